"""Steps in their pods: the pods the KubernetesPodOperator factory renders, run by the docker engine.

``snapshot``, ``preprocess`` and ``embed`` run in the tasks image (``make images``) with the rendered
command, env, securityContext (read-only root) and scratch emptyDir, on a small real catalog; the run
workspace (a model repository folder, where a cluster would use gs://) and the catalog are mounted in at
the paths the argv names.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_photo_catalog
from tests.dags.airflow_support import load_dag, pod_spec
from tests.docker_support import PodOnDocker, docker, logs, require_image, state

pytestmark = pytest.mark.slow

IMAGE = "imagesearch-tasks:dev"
SECRET = "imagesearch-pipeline-git"  # the deploy step's git credentials: no step run here gets it
READ_SECRET = "imagesearch-pipeline-git-read"  # snapshot's read-only git credential (empty here: no GitOps repo)
CONFIG_MAP = "imagesearch-pipeline"


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path]:
    """(model repository, catalog): folders the container's uid can use, as a bucket would be."""
    repository = tmp_path / "models"
    repository.mkdir()
    repository.chmod(0o777)
    catalog = write_photo_catalog(tmp_path / "catalog")
    catalog.parent.chmod(0o755)
    return repository, catalog


@pytest.fixture
def dag(places: tuple[Path, Path]) -> Any:
    require_image(IMAGE)
    return load_dag(IMAGESEARCH_RUNNER="kubernetes", IMAGESEARCH_MODEL_REPOSITORY=str(places[0]),
                    IMAGESEARCH_KUBERNETES_IMAGE=IMAGE, IMAGESEARCH_KUBERNETES_ENV_SECRET=SECRET,
                    IMAGESEARCH_KUBERNETES_ENV_CONFIG_MAP=CONFIG_MAP)


@pytest.fixture
def pods(tmp_path: Path, places: tuple[Path, Path]) -> Iterator[list[PodOnDocker]]:
    made: list[PodOnDocker] = []
    yield made
    for pod in made:
        pod.remove_all()


def step_pod(dag: Any, task_id: str, places: tuple[Path, Path], pods: list[PodOnDocker], scratch: Path,
             catalog: Path, settings: dict[str, str] | None = None) -> tuple[PodOnDocker, dict[str, Any]]:
    spec = pod_spec(dag, task_id, catalog_uri=str(catalog))
    [container] = spec["containers"]
    assert container["image"] == IMAGE
    assert container["command"][:3] == ["python", "-m", f"tasks.steps.{task_id.removeprefix('shard.')}"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    repository, _ = places
    # The ConfigMap gives every step its settings, as gitops/pipeline does in a cluster; here the input policy
    # allows the mounted catalog folder (in a cluster: the catalog bucket, and no local reads).
    config = {"IMAGESEARCH_CATALOG_PREFIXES": str(catalog.parent), "IMAGESEARCH_IMAGE_LOCAL_ROOTS": "", **(settings or {})}
    pod = PodOnDocker(spec, scratch / f"{task_id}-{len(pods)}", config_maps={CONFIG_MAP: config},
                      secrets={SECRET: {}, READ_SECRET: {}},
                      extra_mounts=[f"{repository}:{repository}", f"{catalog.parent}:{catalog.parent}:ro"])
    pods.append(pod)
    return pod, container


def run_step(dag: Any, task_id: str, places: tuple[Path, Path], pods: list[PodOnDocker], scratch: Path,
             catalog: Path) -> subprocess.CompletedProcess[str]:
    pod, container = step_pod(dag, task_id, places, pods, scratch, catalog)
    return pod.run(container)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for_log(name: str, text: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while text not in logs(name):
        assert state(name)["Running"] and time.monotonic() < deadline, logs(name)[-3000:]
        time.sleep(0.2)


def test_snapshot_and_embed_run_in_their_pods(dag: Any, places: tuple[Path, Path], pods: list[PodOnDocker],
                                              tmp_path: Path) -> None:
    repository, catalog = places
    snapshot = summary(run_step(dag, "snapshot", places, pods, tmp_path, catalog))
    assert snapshot["step"] == "snapshot" and snapshot["items"] == 20, snapshot
    preprocess = summary(run_step(dag, "shard.preprocess", places, pods, tmp_path, catalog))
    assert (preprocess["step"], preprocess["ok"], preprocess["failed"]) == ("preprocess", 20, 0), preprocess

    # A deleted pod: the kubelet's SIGTERM ends the step (PID 1 in its container) at once, exit 143. Torch at batch 1
    # keeps it embedding for a while (OpenVINO embeds the 20 images before the signal lands).
    pod, container = step_pod(dag, "shard.embed", places, pods, tmp_path, catalog,
                              {"IMAGESEARCH_EMBED_BATCH_SIZE": "1", "IMAGESEARCH_EMBEDDER_RUNTIME": "torch"})
    name = pod.start(container, publish={})
    wait_for_log(name, "batch 0-1 of 20")
    grace = pod.pod.get("terminationGracePeriodSeconds") or 30
    subprocess.run([docker(), "stop", "--time", str(grace), name], check=True, capture_output=True, timeout=grace + 60)
    assert state(name)["ExitCode"] == 143, logs(name)[-3000:]
    assert logs(name).strip().splitlines()[-1] == "embed failed: terminated by SIGTERM"

    embedded = summary(run_step(dag, "shard.embed", places, pods, tmp_path, catalog))
    assert (embedded["step"], embedded["shard"], embedded["items"]) == ("embed", 0, 20), embedded
    assert embedded["device"] == "cpu"
    assert Path(container["command"][4]).is_relative_to(repository / "runs")
    assert (Path(container["command"][4]) / "snapshot" / "run.json").is_file()
    # Everything the steps wrote belongs to the pod's uid.
    owners = {path.stat().st_uid for path in repository.rglob("*")}
    assert owners == {int(pods[0].pod["securityContext"]["runAsUser"])}, owners


def test_a_corrupt_catalog_exits_2(dag: Any, places: tuple[Path, Path], pods: list[PodOnDocker], tmp_path: Path) -> None:
    _, catalog = places
    corrupt = catalog.with_name("corrupt.csv")
    corrupt.write_text("item_id,image_uri,title,category,price,on_sale,updated_at\nx,a.png,A,c,free,yes,never\n")
    result = run_step(dag, "snapshot", places, pods, tmp_path, corrupt)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("snapshot failed: catalog"), result.stderr[-2000:]
    assert "no valid rows" in result.stderr
    assert result.stdout.strip() == ""
