"""Kubernetes mode without a cluster: every step's pod renders, validates strictly, and runs the local argv, the
same whether Airflow reaches the cluster through a kubeconfig (``kubernetes``) or the Google provider (``gke``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.pipeline import STEP, STEPS
from tests.dags.airflow_support import RUN_VERSION, load_dag, render

STEP_TASKS = tuple(f"shard.{step.name}" if step.sharded else step.name for step in STEPS)
SETTINGS = {
    "IMAGESEARCH_MODEL_REPOSITORY": "gs://models/imagesearch",
    "IMAGESEARCH_KUBERNETES_IMAGE": "europe-docker.pkg.dev/shop/imagesearch/tasks:1.4.2",
    "IMAGESEARCH_KUBERNETES_NAMESPACE": "imagesearch", "IMAGESEARCH_KUBERNETES_SERVICE_ACCOUNT": "image-index-pipeline",
    "IMAGESEARCH_KUBERNETES_ENV_SECRET": "imagesearch-pipeline-git",
    "IMAGESEARCH_KUBERNETES_ENV_READ_SECRET": "imagesearch-pipeline-git-read", "IMAGESEARCH_KUBERNETES_RESOURCES": "",
    "IMAGESEARCH_KUBERNETES_GPU_COUNT": "1", "IMAGESEARCH_KUBERNETES_GPU_RESOURCE": "nvidia.com/gpu",
    "IMAGESEARCH_KUBERNETES_GPU_NODE_SELECTOR": "cloud.google.com/gke-accelerator=nvidia-l4",
    "IMAGESEARCH_KUBERNETES_GPU_TOLERATION": "nvidia.com/gpu", "IMAGESEARCH_KUBERNETES_DEFERRABLE": "true",
}
GKE = {"IMAGESEARCH_GKE_PROJECT": "shop-prod", "IMAGESEARCH_GKE_LOCATION": "europe-west4",
       "IMAGESEARCH_GKE_CLUSTER": "imagesearch", "IMAGESEARCH_GCP_CONN_ID": "google_cloud_pipeline"}
POD_RUNNERS = ("kubernetes", "gke")


@pytest.fixture(scope="module", params=POD_RUNNERS)
def pod_dag(request: pytest.FixtureRequest) -> Any:
    return load_dag(IMAGESEARCH_RUNNER=request.param, **SETTINGS, **GKE)


@pytest.fixture(scope="module")
def local_dag() -> Any:
    return load_dag(IMAGESEARCH_RUNNER="local", **SETTINGS)


def shard_of(task_id: str) -> int | None:
    return 0 if task_id.startswith("shard.") else None


def pod_of(dag: Any, task_id: str, **params: Any) -> Any:
    return render(dag, task_id, shard=shard_of(task_id), **params).build_pod_request_obj(dry_run=True)


def test_step_tasks_are_pod_operators(pod_dag: Any) -> None:
    from plugins.operators.pod import StepPodOperator

    assert {t.task_id for t in pod_dag.tasks if isinstance(t, StepPodOperator)} == set(STEP_TASKS)


def test_gke_runner_starts_the_pods_on_the_configured_cluster() -> None:
    from airflow.providers.google.cloud.operators.kubernetes_engine import GKEStartPodOperator

    dag = load_dag(IMAGESEARCH_RUNNER="gke", **SETTINGS, **GKE)
    for task_id in STEP_TASKS:
        operator = render(dag, task_id, shard=shard_of(task_id))
        assert isinstance(operator, GKEStartPodOperator), task_id
        assert (operator.project_id, operator.location, operator.cluster_name, operator.gcp_conn_id) == (
            "shop-prod", "europe-west4", "imagesearch", "google_cloud_pipeline")
    plain = load_dag(IMAGESEARCH_RUNNER="kubernetes", **SETTINGS, **GKE)
    assert not any(isinstance(task, GKEStartPodOperator) for task in plain.tasks)
    # The same pods, field for field, but for the random suffix of their names.
    for task_id in STEP_TASKS:
        gke_pod, plain_pod = (serialized_pod(pod_of(each, task_id)) for each in (dag, plain))
        assert gke_pod == plain_pod, task_id


def test_gke_runner_needs_a_cluster() -> None:
    from imagesearch.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="GKE_LOCATION and IMAGESEARCH_GKE_CLUSTER"):
        Settings.from_env({"IMAGESEARCH_RUNNER": "gke", "IMAGESEARCH_GKE_LOCATION": "europe-west4"})


@pytest.mark.parametrize("task_id", STEP_TASKS)
def test_pod_command_is_exactly_the_local_argv(pod_dag: Any, local_dag: Any, task_id: str) -> None:
    params = {"catalog_uri": "gs://shop/catalog.parquet", "limit": 1000, "full_rebuild": True}
    [container] = pod_of(pod_dag, task_id, **params).spec.containers
    argv = render(local_dag, task_id, shard=shard_of(task_id), **params).step_argv()
    assert container.command == argv
    assert not container.args
    assert argv[:3] == STEP[task_id.removeprefix("shard.")].command
    assert argv[4] == f"gs://models/imagesearch/runs/{RUN_VERSION}"


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    validate = Path(sys.executable).with_name("kubernetes-validate")
    return subprocess.run([str(validate), "--strict", str(path)], capture_output=True, text=True, timeout=120)


def serialized_pod(pod: Any, *, stable_name: bool = True) -> dict[str, Any]:
    """The pod as the API server gets it; with ``stable_name``, without the random suffix of its name."""
    from kubernetes.client import ApiClient

    document = ApiClient().sanitize_for_serialization(pod)
    if stable_name:
        document["metadata"]["name"] = document["metadata"]["name"].rsplit("-", 1)[0]
    return document


def test_every_pod_validates_against_the_kubernetes_schema(pod_dag: Any, tmp_path: Path) -> None:
    pods = [serialized_pod(pod_of(pod_dag, task_id), stable_name=False) for task_id in STEP_TASKS]
    manifests = tmp_path / "pods.yaml"
    manifests.write_text(yaml.safe_dump_all(pods))
    result = kubernetes_validate(manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource pod/") == len(STEP_TASKS), result.stdout
    # The validator is strict: an unknown field fails it.
    pods[0]["spec"]["containers"][0]["gpus"] = 1
    manifests.write_text(yaml.safe_dump_all(pods))
    assert kubernetes_validate(manifests).returncode != 0


def test_pods_follow_settings(pod_dag: Any) -> None:
    for task_id in STEP_TASKS:
        operator = pod_dag.task_dict[task_id]
        pod = pod_of(pod_dag, task_id)
        [container] = pod.spec.containers
        assert pod.metadata.namespace == "imagesearch"
        assert pod.spec.service_account_name == "image-index-pipeline"
        assert container.image == SETTINGS["IMAGESEARCH_KUBERNETES_IMAGE"]
        assert container.env_from[0].config_map_ref.name == "imagesearch-pipeline"
        assert {"cpu", "memory"} <= set(container.resources.requests) and {"cpu", "memory"} <= set(container.resources.limits)
        assert pod.spec.active_deadline_seconds == int(operator.execution_timeout.total_seconds())
        assert pod.spec.restart_policy == "Never"
        assert pod.spec.security_context.run_as_non_root is True
        assert container.security_context.allow_privilege_escalation is False
        assert container.termination_message_policy == "FallbackToLogsOnError"
        assert operator.get_logs is True and operator.on_finish_action.value == "delete_pod"
        assert pod.metadata.labels["app.kubernetes.io/component"].startswith("image-index-")
    assert pod_dag.task_dict["shard.embed"].deferrable and not pod_dag.task_dict["snapshot"].deferrable


def test_least_privilege_in_every_step_pod(pod_dag: Any) -> None:
    """Only deploy (which pushes to git) gets the push credentials Secret, only snapshot and evaluate (which read
    what serves) the read-only one, nobody both; no API token; read-only root with a writable scratch emptyDir
    holding HOME and every cache; no capabilities."""
    expected = {"deploy": ["imagesearch-pipeline-git"], "snapshot": ["imagesearch-pipeline-git-read"],
                "evaluate": ["imagesearch-pipeline-git-read"]}
    for task_id in STEP_TASKS:
        pod = pod_of(pod_dag, task_id)
        [container] = pod.spec.containers
        secrets = [source.secret_ref.name for source in container.env_from if source.secret_ref]
        assert secrets == expected.get(task_id, []), task_id
        # The settings ConfigMap first: a Secret's keys win over it (its older token-in-URL form included).
        assert container.env_from[0].config_map_ref.name == "imagesearch-pipeline", task_id
        assert pod.spec.automount_service_account_token is False
        context = container.security_context
        assert context.read_only_root_filesystem is True and context.run_as_non_root is True
        assert context.capabilities.drop == ["ALL"] and not context.capabilities.add
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
        [volume] = pod.spec.volumes
        assert volume.empty_dir is not None
        mounts = {mount.name: mount.mount_path for mount in container.volume_mounts}
        env = {var.name: var.value for var in container.env}
        for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "TORCH_HOME", "MPLCONFIGDIR"):
            assert Path(env[name]).is_relative_to(mounts[volume.name]), name


def test_only_embed_asks_for_a_gpu(pod_dag: Any) -> None:
    for task_id in STEP_TASKS:
        pod = pod_of(pod_dag, task_id)
        limits = pod.spec.containers[0].resources.limits
        if task_id == "shard.embed":
            assert limits["nvidia.com/gpu"] == "1"
            assert pod.spec.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
            assert [(t.key, t.operator, t.effect) for t in pod.spec.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]
            assert pod.spec.containers[0].command[-2:] == ["--device", "auto"]  # CUDA when present: the local argv
        else:
            assert "nvidia.com/gpu" not in limits and not pod.spec.node_selector and not pod.spec.tolerations


@pytest.mark.parametrize("runner", POD_RUNNERS)
def test_resource_overrides_and_cpu_embedding(runner: str) -> None:
    overrides = '{"embed": {"requests": {"memory": "20Gi"}, "limits": {"memory": "24Gi"}}}'
    dag = load_dag(**{**SETTINGS, **GKE, "IMAGESEARCH_RUNNER": runner, "IMAGESEARCH_KUBERNETES_GPU_COUNT": "0",
                      "IMAGESEARCH_KUBERNETES_RESOURCES": overrides})
    pod = pod_of(dag, "shard.embed")
    resources = pod.spec.containers[0].resources
    assert resources.requests["memory"] == "20Gi" and resources.limits["memory"] == "24Gi"
    assert "nvidia.com/gpu" not in resources.limits and not pod.spec.node_selector and not pod.spec.tolerations
