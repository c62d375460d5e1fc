"""The local step operator: a real subprocess with the pod's argv; failures, retries, skips and kills."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from plugins.operators.local import LocalStepOperator
from tests.dags.airflow_support import write_corrupt_catalog
from tests.flaky_server import flaky_server
from tests.plugins.local_support import local_step


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
    _, alive = psutil.wait_procs(tree, timeout=5)  # the group got SIGTERM; a busy machine may take a moment to reap it
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def _capture(errors: list[BaseException], function: Any, *args: Any) -> None:
    try:
        function(*args)
    except BaseException as exc:
        errors.append(exc)
