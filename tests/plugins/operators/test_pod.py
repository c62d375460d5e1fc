"""The step pod operator: its summary from the pod log, exit codes to fail, retry or skip."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from plugins.operators.pod import StepPodOperator


def test_a_skip_from_the_pod_path_is_explained_too(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    operator = StepPodOperator(task_id="deploy", step="deploy", workspace="gs://m/runs/v", namespace="ns", image="tasks:1",
                               enabled="False")
    with pytest.raises(AirflowSkipException):
        operator.execute(context={})  # type: ignore[arg-type]
    logged = capfd.readouterr()
    assert "Skipped: deploy is switched off for this run" in logged.out + logged.err


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


def pod_step(runner: str, **kwargs: Any) -> StepPodOperator:
    """The pod operator of ``runner``: plain Kubernetes, or the same pod on a GKE cluster."""
    if runner == "gke":
        from plugins.operators.gke import StepGKEPodOperator

        return StepGKEPodOperator(location="europe-west4", cluster_name="imagesearch", **kwargs)
    return StepPodOperator(**kwargs)


@pytest.mark.parametrize("runner", ["kubernetes", "gke"])
@pytest.mark.parametrize(("code", "raised"), [(2, AirflowFailException), (1, AirflowException)])
def test_a_pod_that_exits_2_fails_without_retries(monkeypatch: pytest.MonkeyPatch, code: int, raised: type,
                                                  runner: str) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def base_cleanup(self: Any, pod: Any, remote_pod: Any) -> None:  # what the provider raises for a failed pod
        raise AirflowException(f"Pod {remote_pod.metadata.name} returned a failure")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", base_cleanup)
    operator = pod_step(runner, task_id="evaluate", step="evaluate", workspace="gs://m/runs/v", namespace="ns",
                        image="tasks:1")
    with pytest.raises(raised) as caught:
        operator.cleanup(failed_pod(code), failed_pod(code))
    assert (caught.type is AirflowFailException) == (code == 2)


@pytest.mark.parametrize("runner", ["kubernetes", "gke"])
def test_a_pod_that_exits_skipped_is_skipped_with_the_steps_reason(monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    def base_cleanup(self: Any, pod: Any, remote_pod: Any) -> None:  # what the provider raises for skip_on_exit_code
        raise AirflowSkipException(f"Pod {remote_pod.metadata.name} returned exit code 3. Skipping.")

    monkeypatch.setattr(KubernetesPodOperator, "cleanup", base_cleanup)
    operator = pod_step(runner, task_id="deploy", step="deploy", workspace="gs://m/runs/v", namespace="ns", image="tasks:1")
    operator.summary = {"step": "deploy", "skipped": "gitops/overlays/prod is pinned to 20261127T050000Z"}
    with pytest.raises(AirflowSkipException, match="step deploy skipped: gitops/overlays/prod is pinned to 20261127T050000Z"):
        operator.cleanup(failed_pod(3), failed_pod(3))


def test_git_credentials_go_only_to_the_pods_that_need_them() -> None:
    """deploy: the push Secret alone; snapshot and evaluate: the read-only Secret alone (none for a public repo);
    every other step: no Secret. The settings ConfigMap (the repo's URL) comes first, so a Secret's keys win."""
    from imagesearch.settings import Settings
    from plugins.operators.pod import env_sources
    from tasks.pipeline import STEPS

    def secrets(settings: Settings) -> dict[str, list[str]]:
        return {step.name: [source.secret_ref.name for source in env_sources(step, settings) if source.secret_ref]
                for step in STEPS}

    by_step = secrets(Settings.from_env({"IMAGESEARCH_KUBERNETES_ENV_SECRET": "push",
                                         "IMAGESEARCH_KUBERNETES_ENV_READ_SECRET": "read"}))
    assert {name: names for name, names in by_step.items() if names} == {
        "snapshot": ["read"], "evaluate": ["read"], "deploy": ["push"]}
    public = secrets(Settings.from_env({"IMAGESEARCH_KUBERNETES_ENV_READ_SECRET": ""}))
    assert {name: names for name, names in public.items() if names} == {"deploy": ["imagesearch-pipeline-git"]}
    for step in STEPS:
        assert env_sources(step, Settings.from_env({}))[0].config_map_ref.name == "imagesearch-pipeline"
