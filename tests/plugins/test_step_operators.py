"""The step operators: argv from templated parts, the local subprocess (logs, exit codes, kill), summaries."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from plugins.hooks.process import StepProcessHook
from plugins.operators.command import parse_summary, truthy
from plugins.operators.local import LocalStepOperator
from plugins.operators.pod import StepPodOperator
from tests.dags.airflow_support import write_corrupt_catalog
from tests.flaky_server import flaky_server


def local_step(step: str, workspace: str | Path, **kwargs: Any) -> LocalStepOperator:
    return LocalStepOperator(task_id=step, step=step, workspace=str(workspace), **kwargs)


def test_summary_is_the_last_json_object_line() -> None:
    lines = ["2026-01-01 snapshot INFO reading", '{"step": "snapshot", "shard_ids": [0, 1]}', "[1, 2]", "{not json}",
             "2026-01-01 snapshot INFO done"]
    assert parse_summary(lines) == {"step": "snapshot", "shard_ids": [0, 1]}
    assert parse_summary(["no summary here", "[]"]) is None


def test_truthy_reads_rendered_templates() -> None:
    assert [truthy(v) for v in ("True", "true", " 1 ", "yes", True)] == [True] * 5
    assert [truthy(v) for v in ("False", "", "0", "None", False)] == [False] * 5


def test_argv_is_built_from_rendered_options_and_flags() -> None:
    operator = local_step("snapshot", "/repo/runs/v", options={"--catalog": "c.csv", "--limit": "0", "--version": ""},
                          flags={"--full-rebuild": "True", "--on-sale-only": "False"})
    # An empty option is left out (the step's default applies); "0" is a value; a switch renders true or false.
    assert operator.step_argv() == ["python", "-m", "tasks.snapshot", "--workspace", "/repo/runs/v", "--catalog", "c.csv",
                                    "--limit", "0", "--full-rebuild"]
    shard = local_step("embed", "/repo/runs/v", options={"--device": "auto"}, shard=3)
    assert shard.step_argv() == ["python", "-m", "tasks.embed", "--workspace", "/repo/runs/v", "--shard", "3", "--device", "auto"]
    with pytest.raises(ValueError, match="step embed needs shard"):
        local_step("embed", "/repo/runs/v").step_argv()
    deploy = local_step("deploy", "/repo/runs/v", options={"--repository": "/repo"})
    assert deploy.step_argv()[:3] == ["python", "-m", "tasks.commit_version"]  # the task keeps its name


def test_the_hook_runs_python_as_this_interpreter_and_logs_its_output(capfd: pytest.CaptureFixture[str]) -> None:
    script = "import sys; print(sys.executable); print('to stderr', file=sys.stderr); sys.exit(3)"
    result = StepProcessHook().run(["python", "-c", script])
    assert result.returncode == 3
    assert result.tail == [sys.executable, "to stderr"]
    assert result.reason == "exit code 3: to stderr"
    logged = capfd.readouterr()
    assert "to stderr" in logged.out + logged.err  # each line went to the (task) log as it came


def test_the_hook_names_the_signal_that_killed_the_child() -> None:
    result = StepProcessHook().run(["python", "-c", "import os, signal; print('bye'); os.kill(os.getpid(), signal.SIGKILL)"])
    assert result.returncode < 0 and result.reason == "killed by SIGKILL; last output: bye"


def test_a_step_runs_and_returns_its_summary(photo_catalog: Path, tmp_path: Path) -> None:
    operator = local_step("snapshot", tmp_path / "runs" / "v", options={"--catalog": str(photo_catalog),
                                                                      "--repository": str(tmp_path), "--shard-size": "8"})
    summary = operator.execute(context={})  # type: ignore[arg-type]
    assert summary["step"] == "snapshot" and summary["shard_ids"] == [0, 1, 2] and summary["items"] == 20


def test_a_failing_step_fails_the_task_with_its_reason(photo_catalog: Path, tmp_path: Path) -> None:
    corrupt = write_corrupt_catalog(photo_catalog, tmp_path / "corrupt.csv")
    operator = local_step("snapshot", tmp_path / "ws", options={"--catalog": str(corrupt), "--repository": str(tmp_path)})
    reason = r"step snapshot failed and a retry cannot help, exit code 2: snapshot failed: catalog .*: 15 of 20 rows are invalid"
    with pytest.raises(AirflowFailException, match=reason):  # not retried: the catalog will not fix itself
        operator.execute(context={})  # type: ignore[arg-type]


def test_a_transient_failure_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagesearch.gcs import gcs_client

    with flaky_server() as store:  # the model repository answers 503 to everything
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", store)
        monkeypatch.setenv("IMAGESEARCH_REPOSITORY_RETRY_S", "0.5")
        gcs_client.cache_clear()
        operator = local_step("build_index", "gs://models/runs/v")
        with pytest.raises(AirflowException, match="step build_index failed, exit code 1: build_index failed: model "
                                                   "repository unreachable") as caught:
            operator.execute(context={})  # type: ignore[arg-type]
    gcs_client.cache_clear()
    assert not isinstance(caught.value, AirflowFailException)  # Airflow tries it again


def test_a_switched_off_step_is_skipped_without_running_and_logs_why(tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]) -> None:
    operator = local_step("publish", tmp_path / "nowhere", enabled="False")
    with pytest.raises(AirflowSkipException, match="switched off"):
        operator.execute(context={})  # type: ignore[arg-type]
    logged = capfd.readouterr()
    # In the task's own log, from execute(): not only in Airflow's collapsed post-execute group.
    assert "Skipped: publish is switched off for this run (enabled='False')" in logged.out + logged.err


def test_a_skip_from_the_pod_path_is_explained_too(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    operator = StepPodOperator(task_id="deploy", step="deploy", workspace="gs://m/runs/v", namespace="ns", image="tasks:1",
                               enabled="False")
    with pytest.raises(AirflowSkipException):
        operator.execute(context={})  # type: ignore[arg-type]
    logged = capfd.readouterr()
    assert "Skipped: deploy is switched off for this run" in logged.out + logged.err


def test_the_summary_is_logged_once(photo_catalog: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    operator = local_step("snapshot", tmp_path / "runs" / "v", options={"--catalog": str(photo_catalog),
                                                                      "--repository": str(tmp_path)})
    summary = operator.execute(context={})  # type: ignore[arg-type]
    logged = capfd.readouterr()
    assert (logged.out + logged.err).count(f'"shard_ids": {summary["shard_ids"]}') == 1  # as the step printed it


class SleepingStep(LocalStepOperator):
    """A step that starts a grandchild and sleeps: stands in for a long embed."""

    def step_argv(self) -> list[str]:
        script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); " \
                 "print('started', flush=True); time.sleep(60)"
        return ["python", "-c", script]


def test_killing_the_task_terminates_the_step_and_its_children(tmp_path: Path) -> None:
    operator = SleepingStep(task_id="embed", step="embed", workspace=str(tmp_path), termination_grace_s=5)
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(errors, operator.execute, {}))
    thread.start()
    deadline = time.monotonic() + 30
    while not (operator.hook and operator.hook.process and len(_tree(operator.hook.process.pid)) >= 2):
        assert time.monotonic() < deadline, "the step did not start"
        time.sleep(0.1)
    tree = _tree(operator.hook.process.pid)
    began = time.monotonic()
    operator.on_kill()
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - began < 10
    assert [type(e) for e in errors] == [AirflowException] and "killed by SIGTERM" in str(errors[0])
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _capture(errors: list[BaseException], function: Any, *args: Any) -> None:
    try:
        function(*args)
    except BaseException as exc:
        errors.append(exc)


class FakeCoreV1:
    def __init__(self, log: str) -> None:
        self.log = log
        self.calls: list[dict[str, Any]] = []

    def read_namespaced_pod_log(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return self.log


def test_a_pod_summary_is_read_from_the_end_of_its_log() -> None:
    from kubernetes.client import models as k8s

    operator = StepPodOperator(task_id="build_index", step="build_index", workspace="gs://m/runs/v", namespace="ns",
                               image="tasks:1")
    client = FakeCoreV1('2026 build_index INFO merging\n{"step": "build_index", "items": 20}\n')
    operator.__dict__["client"] = client  # the operator's CoreV1Api
    pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="image-index-build-index-x", namespace="ns"))
    assert operator.read_summary(pod) == {"step": "build_index", "items": 20}
    assert client.calls == [{"name": "image-index-build-index-x", "namespace": "ns", "container": "base", "tail_lines": 200}]
    assert os.environ.get("AIRFLOW_HOME")  # tests/plugins/conftest.py isolated Airflow


def failed_pod(code: int) -> Any:
    from kubernetes.client import models as k8s

    terminated = k8s.V1ContainerStateTerminated(exit_code=code, message="evaluate failed: quality gate failed")
    status = k8s.V1ContainerStatus(name="base", image="tasks:1", image_id="", ready=False, restart_count=0,
                                   state=k8s.V1ContainerState(terminated=terminated))
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p", namespace="ns"),
                     status=k8s.V1PodStatus(phase="Failed", container_statuses=[status]))


@pytest.mark.parametrize(("code", "raised"), [(2, AirflowFailException), (1, AirflowException)])
def test_a_pod_that_exits_2_fails_without_retries(monkeypatch: pytest.MonkeyPatch, code: int, raised: type) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def base_cleanup(self: Any, pod: Any, remote_pod: Any) -> None:  # what the provider raises for a failed pod
        raise AirflowException(f"Pod {remote_pod.metadata.name} returned a failure")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", base_cleanup)
    operator = StepPodOperator(task_id="evaluate", step="evaluate", workspace="gs://m/runs/v", namespace="ns", image="tasks:1")
    with pytest.raises(raised) as caught:
        operator.cleanup(failed_pod(code), failed_pod(code))
    assert (caught.type is AirflowFailException) == (code == 2)


def test_a_pod_that_exits_skipped_is_skipped_with_the_steps_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def base_cleanup(self: Any, pod: Any, remote_pod: Any) -> None:  # what the provider raises for skip_on_exit_code
        raise AirflowSkipException(f"Pod {remote_pod.metadata.name} returned exit code 3. Skipping.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", base_cleanup)
    operator = StepPodOperator(task_id="deploy", step="deploy", workspace="gs://m/runs/v", namespace="ns", image="tasks:1")
    operator.summary = {"step": "deploy", "skipped": "gitops/overlays/prod is pinned to 20261127T050000Z"}
    with pytest.raises(AirflowSkipException, match="step deploy skipped: gitops/overlays/prod is pinned to 20261127T050000Z"):
        operator.cleanup(failed_pod(3), failed_pod(3))
