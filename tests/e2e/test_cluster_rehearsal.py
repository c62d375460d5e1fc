"""The cluster path rehearsed: hourly ``image_index`` runs with every step run as the container of the pod the DAG
renders for ``IMAGESEARCH_RUNNER=kubernetes``, then the serving Deployment as the overlay the DAG bumped renders it.

Each container gets what the cluster would give it and nothing more: the pod's command, ``env`` and ``envFrom``
(the pipeline ConfigMap as ``kubectl kustomize gitops/pipeline`` renders it, and the git credential Secrets as the
manifests document them), its emptyDir mounts, user and read-only root, in DAG order. What a cluster provides
around the pods is real and on loopback (the host network): the GCS emulator holds the model repository and the
catalog bucket the ConfigMap names, and a git server over HTTP (a read-only and a push credential) is the GitOps
remote. Only the GitOps URL in the ConfigMap is this site's, and the GCS endpoint is the cluster's own.

The first run publishes and commits; the next hour, with the catalog unchanged, says "nothing changed" and commits
nothing (this is what catches a step pod that cannot read what serves); after a catalog change the regression gate
compares with the serving version. Then the Deployment's ``fetch-index`` and ``search`` containers serve the version
git names, and answer a search.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from imagesearch import gitops
from imagesearch.artifacts import committed_versions
from imagesearch.kustomize import DEPLOYMENT, VERSION_KEY, find_resource, read_workload, render
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from plugins.operators.command import parse_summary
from plugins.operators.pod import StepPodOperator
from plugins.runs import index_version
from tasks.pipeline import STEP, truthy
from tests.conftest import ROOT, jpeg_bytes, photo, write_photo_catalog
from tests.dags.airflow_support import RUN_AFTER, load_dag, serialized_pod
from tests.dags.airflow_support import render as render_task
from tests.docker_support import (
    PodOnDocker,
    named_container,
    probe_url,
    publish_ports,
    require_image,
    wait_until_ready,
)
from tests.e2e.test_whole_loop import changed_catalog
from tests.git_http_server import GitHttpServer
from tests.gitops.support import clone

pytestmark = pytest.mark.slow

TASKS_IMAGE, SERVING_IMAGE = "imagesearch-tasks:dev", "imagesearch-serving:dev"  # what `make images` builds
PIPELINE_CONFIG_MAP = "imagesearch-pipeline"
REPO_URL = "IMAGESEARCH_GITOPS_REPO_URL"
TOKEN = "IMAGESEARCH_GITOPS_TOKEN"
NOT_PODS = {"shards", "run_note"}  # the DAG's tasks that run in Airflow itself, not in a pod


@dataclass
class Cluster:
    """What the rehearsal's cluster gives the pods, and the services behind it."""

    config_map: dict[str, str]  # the pipeline ConfigMap's data, as the pods get it
    secrets: dict[str, dict[str, str]]  # the git credential Secrets
    cluster_env: dict[str, str]  # what every container gets from the cluster itself: the GCS endpoint
    git: GitHttpServer
    repo: str  # the GitOps repo's name on the git server
    catalog_folder: str  # gs://... where the catalog and its images are
    catalog: Path  # the catalog folder's local copy
    scratch: Path
    dag: Any = None
    pods: list[PodOnDocker] = field(default_factory=list)

    @property
    def catalog_uri(self) -> str:
        return f"{self.catalog_folder}/{self.catalog.name}"

    @property
    def gitops_read(self) -> gitops.GitOpsConfig:
        return gitops.GitOpsConfig(url=self.git.url(self.repo), username="x-access-token", token=self.git.read_token,
                                   overlay=self.config_map["IMAGESEARCH_GITOPS_OVERLAY"])

    def branch_tip(self) -> str:
        bare = self.git.repo_path(self.repo)
        return subprocess.run(["git", "rev-parse", "refs/heads/main"], cwd=bare, capture_output=True, text=True,
                              check=True).stdout.strip()

    def pod(self, spec: dict[str, Any], name: str, config_maps: dict[str, dict[str, str]]) -> PodOnDocker:
        pod = PodOnDocker(spec, self.scratch / name, config_maps=config_maps, secrets=self.secrets,
                          cluster_env=self.cluster_env, host_network=True)
        self.pods.append(pod)
        return pod


def bucket_of(uri: str) -> str:
    return uri.removeprefix("gs://").split("/", 1)[0]


def upload(folder: Path, target: str, before: Path | None = None) -> None:
    """The files of ``folder`` into the bucket folder ``target``: those that differ from ``before``'s, if given."""
    bucket = open_repository(target)
    for path in folder.iterdir():
        if before is None or not (before / path.name).is_file() or (before / path.name).read_bytes() != path.read_bytes():
            bucket.put_file(path.name, path)


@pytest.fixture
def cluster(tmp_path: Path, gcs_emulator: str, git_http_server: GitHttpServer) -> Iterator[Cluster]:
    from google.api_core.exceptions import Conflict

    from imagesearch.gcs import gcs_client

    require_image(TASKS_IMAGE)
    require_image(SERVING_IMAGE)
    config_map = find_resource(render(ROOT / "gitops" / "pipeline"), "ConfigMap", PIPELINE_CONFIG_MAP)["data"]
    repo = f"gitops-{tmp_path.name}"
    if REPO_URL in config_map:  # only the site's value: a ConfigMap without the key gives the pods no GitOps URL
        config_map[REPO_URL] = git_http_server.url(repo)
    settings = Settings.from_env()
    # The Secrets, created out of band as gitops/pipeline/kustomization.yaml documents them.
    secrets = {settings.kubernetes.env_secret: {TOKEN: git_http_server.push_token},
               settings.kubernetes.env_read_secret: {TOKEN: git_http_server.read_token}}
    for bucket in {bucket_of(config_map["IMAGESEARCH_MODEL_REPOSITORY"]), *config_map["IMAGESEARCH_IMAGE_BUCKETS"].split(",")}:
        with contextlib.suppress(Conflict):  # the emulator lives for the session
            gcs_client().create_bucket(bucket)
    prefix = config_map["IMAGESEARCH_CATALOG_PREFIXES"].split(",")[0]
    catalog_folder = f"{prefix.rstrip('/')}/rehearsal-{uuid.uuid4().hex[:8]}"
    source = write_photo_catalog(tmp_path / "catalog")
    upload(source.parent, catalog_folder)
    assert gitops.bootstrap(gitops.GitOpsConfig(url=str(git_http_server.repo_path(repo))))
    made = Cluster(config_map, secrets, {"STORAGE_EMULATOR_HOST": gcs_emulator}, git_http_server, repo, catalog_folder,
                   source, tmp_path / "pods")
    # The scheduler's settings: the same as the pods', this image, the catalog; the photo catalog's mirrored twins
    # may rank first (a top-1 floor of 0.5, as in every test of it).
    made.dag = load_dag(**config_map, IMAGESEARCH_RUNNER="kubernetes", IMAGESEARCH_KUBERNETES_IMAGE=TASKS_IMAGE,
                        IMAGESEARCH_KUBERNETES_ENV_CONFIG_MAP=PIPELINE_CONFIG_MAP,
                        IMAGESEARCH_CATALOG_URI=made.catalog_uri, IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1="0.5")
    yield made
    for pod in made.pods:
        pod.remove_all()


def dag_order(dag: Any) -> list[str]:
    """The DAG's task ids, each after all its upstream tasks (declaration order among those ready)."""
    order: list[str] = []
    pending = list(dag.task_dict)
    while pending:
        ready = next(task_id for task_id in pending if dag.task_dict[task_id].upstream_task_ids <= set(order))
        order.append(ready)
        pending.remove(ready)
    return order


@dataclass
class HourlyRun:
    version: str
    summaries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # task id -> one per pod (per shard)
    logs: dict[str, str] = field(default_factory=dict)  # task id -> the last pod's log
    env_from: dict[str, list[str]] = field(default_factory=dict)  # task id -> the ConfigMaps and Secrets it got

    def summary(self, task_id: str) -> dict[str, Any]:
        [summary] = self.summaries[task_id]
        return summary


def run_hour(cluster: Cluster, hour: int) -> HourlyRun:
    """One scheduled run: every task in DAG order, each step task as its pod's container (a per-shard one per shard)."""
    run_after = RUN_AFTER + timedelta(hours=hour)
    run_id = f"scheduled__{run_after.isoformat()}"
    run = HourlyRun(index_version(SimpleNamespace(run_id=run_id, run_after=run_after)))
    shards: list[int] = []
    for task_id in dag_order(cluster.dag):
        task = cluster.dag.task_dict[task_id]
        if task_id == "shards":
            shards = task.python_callable(run.summary("snapshot"))  # what the mapped group expands over
            continue
        if task_id in NOT_PODS:
            continue
        assert isinstance(task, StepPodOperator), f"{task_id} is neither a step pod nor a task the rehearsal knows"
        for shard in shards if STEP[task.step].sharded else [None]:
            run_pod(cluster, run, task_id, shard, run_id, run_after)
    return run


def run_pod(cluster: Cluster, run: HourlyRun, task_id: str, shard: int | None, run_id: str, run_after: datetime) -> None:
    task = render_task(cluster.dag, task_id, shard=shard, run_id=run_id, run_after=run_after)
    assert truthy(task.enabled), f"{task_id} is switched off in a default run"
    spec = serialized_pod(task)
    [container] = spec["containers"]
    assert container["image"] == TASKS_IMAGE and container["securityContext"]["readOnlyRootFilesystem"] is True
    run.env_from[task_id] = [(source.get("configMapRef") or source.get("secretRef"))["name"]
                             for source in container.get("envFrom") or []]
    pod = cluster.pod(spec, f"{run.version}-{task_id}-{shard}", {PIPELINE_CONFIG_MAP: cluster.config_map})
    result = pod.run(container, timeout=spec["activeDeadlineSeconds"])
    assert result.returncode == 0, f"{task_id} (shard {shard}) exited {result.returncode}:\n{result.stderr[-4000:]}"
    summary = parse_summary(result.stdout.splitlines())  # what the operator reads from the pod's log
    assert summary is not None, f"{task_id} printed no summary:\n{result.stdout[-2000:]}"
    run.summaries.setdefault(task_id, []).append(summary)
    run.logs[task_id] = result.stderr + result.stdout


def gate_compared_with(evaluated: dict[str, Any], serving: str) -> list[str]:
    """The metrics the evaluate step's gate report scored against ``serving``."""
    gate = evaluated["gate"]
    assert gate["serving"] == serving, gate
    return [name for name, row in gate["metrics"].items() if "serving" in row and "delta" in row]


def serve(cluster: Cluster, version: str) -> None:
    """The Deployment of the overlay at the GitOps branch tip, as rendered: fetch-index, then search; one search."""
    checkout = clone(cluster.gitops_read, cluster.scratch / "gitops-checkout")
    resources = render(checkout.path / cluster.config_map["IMAGESEARCH_GITOPS_OVERLAY"])
    workload = read_workload(resources)
    assert workload.version == version
    spec = find_resource(resources, "Deployment", DEPLOYMENT)["spec"]["template"]["spec"]
    for container in (*spec["initContainers"], *spec["containers"]):
        container["image"] = SERVING_IMAGE  # the registry's image is the one `make images` builds
    config_maps = {r["metadata"]["name"]: r.get("data") or {} for r in resources if r["kind"] == "ConfigMap"}
    assert config_maps[workload.config_map][VERSION_KEY] == version
    pod = cluster.pod(spec, "serving", config_maps)
    fetched = pod.run(named_container(spec, "initContainers", "fetch-index"))
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert parse_summary(fetched.stdout.splitlines())["version"] == version  # type: ignore[index]

    search = named_container(spec, "containers", "search")
    publish = publish_ports(search, host_network=True)
    for port in publish:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                pytest.fail(f"port {port}, the search container's, is taken on this machine's loopback")
    name = pod.start(search, publish)
    wait_until_ready(name, search, publish)
    base = probe_url(search, "readinessProbe", publish).removesuffix(search["readinessProbe"]["httpGet"]["path"])
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/readyz").json()["version"] == version
        found = http.post("/v1/search", params={"k": 3},
                          files={"image": ("rocket.jpg", jpeg_bytes(photo("rocket")), "image/jpeg")})
        assert found.status_code == 200, found.text
        assert found.json()["version"] == version
        assert found.json()["results"][0]["item_id"] in ("rocket", "rocket-mirror")


def test_hourly_runs_in_their_pods_then_the_deployment_serves_what_git_names(cluster: Cluster, tmp_path: Path) -> None:
    models = open_repository(cluster.config_map["IMAGESEARCH_MODEL_REPOSITORY"])
    push_secret, read_secret = list(cluster.secrets)

    first = run_hour(cluster, 0)
    assert first.summary("publish")["version"] == first.version
    assert first.summary("deploy")["changed"] is True
    assert gitops.served_version(cluster.gitops_read) == first.version
    # The push credential goes to the deploy pod alone; the steps that read what serves get the read-only one.
    assert [task for task, names in first.env_from.items() if push_secret in names] == ["deploy"]
    assert {task for task, names in first.env_from.items() if read_secret in names} == {"snapshot", "evaluate"}

    tip = cluster.branch_tip()
    second = run_hour(cluster, 1)
    snapshot = second.summary("snapshot")
    assert snapshot["serving_version"] == first.version, "the snapshot pod could not read what serves"
    assert snapshot["nothing_changed"] is True and snapshot["shard_ids"] == [], snapshot
    assert not any(task.startswith("shard.") for task in second.summaries)  # no shard to map: nothing fetched
    for task_id in ("build_index", "evaluate", "publish", "deploy"):
        assert second.summary(task_id)["nothing_changed"] is True, (task_id, second.summary(task_id))
        assert "nothing changed" in second.logs[task_id]
    assert second.summary("deploy")["changed"] is False
    assert cluster.branch_tip() == tip
    assert committed_versions(models) == [first.version]

    changed = changed_catalog(cluster.catalog, tmp_path / "catalog-changed")
    upload(changed.parent, cluster.catalog_folder, before=cluster.catalog.parent)
    third = run_hour(cluster, 2)
    assert third.summary("snapshot")["nothing_changed"] is False
    assert gate_compared_with(third.summary("evaluate"), first.version), third.summary("evaluate")["gate"]
    assert third.summary("evaluate")["passed"] is True
    assert third.summary("deploy")["changed"] is True and cluster.branch_tip() != tip
    assert committed_versions(models) == [first.version, third.version]
    assert gitops.served_version(cluster.gitops_read) == third.version

    serve(cluster, third.version)
