"""The serving Deployment as `kubectl kustomize gitops/overlays/local` renders it, run by the docker engine.

The ``fetch-index`` initContainer, then the ``search`` container, each with its rendered command, env (the
rendered ConfigMap, then ``env``), securityContext and emptyDir mounts, in the image the overlay names
(``make images`` builds it). The model repository a cluster would reach is mounted in where the overlay's
relative path points; the rest is what the manifests say.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagesearch.kustomize import DEPLOYMENT, REPOSITORY_KEY, VERSION_KEY, find_resource, read_literal, render, set_literal
from tests.conftest import ROOT, jpeg_bytes, photo
from tests.docker_support import (
    PodOnDocker,
    docker,
    logs,
    named_container,
    probe_url,
    publish_ports,
    require_image,
    state,
    wait_until_ready,
)

pytestmark = pytest.mark.slow


def image_workdir(image: str) -> str:
    result = subprocess.run([docker(), "image", "inspect", "--format", "{{.Config.WorkingDir}}", image],
                            capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.strip() or "/"


@pytest.fixture
def rendered(tmp_path: Path, published_repository: tuple[Path, str]) -> tuple[list[dict[str, Any]], str]:
    """The local overlay after the pipeline's deploy step named the published version, rendered."""
    gitops = tmp_path / "gitops"
    shutil.copytree(ROOT / "gitops", gitops)
    kustomization = gitops / "overlays" / "local" / "kustomization.yaml"
    kustomization.write_text(set_literal(kustomization.read_text(), VERSION_KEY, published_repository[1]))
    return render(kustomization.parent), read_literal(kustomization.read_text(), REPOSITORY_KEY)


@pytest.fixture
def pod(tmp_path: Path, rendered: tuple[list[dict[str, Any]], str], published_repository: tuple[Path, str],
        photo_catalog: Path) -> Iterator[PodOnDocker]:
    resources, repository = rendered
    spec = find_resource(resources, "Deployment", DEPLOYMENT)["spec"]["template"]["spec"]
    image = named_container(spec, "containers", "search")["image"]
    require_image(image)
    config_maps = {r["metadata"]["name"]: r.get("data") or {} for r in resources if r["kind"] == "ConfigMap"}
    # The overlay's repository path is relative to the working directory: mounted there, read-only. The
    # catalog's photos are mounted where the index's image URIs point (thumbnails).
    repository_path = Path(image_workdir(image)) / repository
    for folder in (published_repository[0], photo_catalog.parent):  # pytest makes them 0700: readable, as a bucket
        folder.chmod(0o755)
    mounts = [f"{published_repository[0]}:{repository_path}:ro", f"{photo_catalog.parent}:{photo_catalog.parent}:ro"]
    runner = PodOnDocker(spec, tmp_path, config_maps, extra_mounts=mounts)
    yield runner
    runner.remove_all()


def test_fetch_index_then_search_run_as_rendered(pod: PodOnDocker, published_repository: tuple[Path, str],
                                                photo_catalog: Path) -> None:
    version = published_repository[1]
    fetch_spec = named_container(dict(pod.pod), "initContainers", "fetch-index")
    search_spec = named_container(dict(pod.pod), "containers", "search")
    assert fetch_spec["securityContext"]["readOnlyRootFilesystem"] and search_spec["securityContext"]["readOnlyRootFilesystem"]

    fetched = pod.run(fetch_spec)
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    summary = json.loads(fetched.stdout.strip().splitlines()[-1])
    assert (summary["version"], summary["index_dir"], summary["items"]) == (version, "/index/current", 20)
    assert summary["reused"] is False
    assert (pod.scratch / "volumes" / "index" / "current" / "_COMMIT").is_file()

    publish = publish_ports(search_spec)
    name = pod.start(search_spec, publish)
    wait_until_ready(name, search_spec, publish)
    base = probe_url(search_spec, "readinessProbe", publish).removesuffix(search_spec["readinessProbe"]["httpGet"]["path"])
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.get("/readyz").json()["version"] == version
        image = jpeg_bytes(photo("rocket"))
        found = http.post("/v1/search", params={"k": 3}, files={"image": ("rocket.jpg", image, "image/jpeg")})
        assert found.status_code == 200, found.text
        assert found.json()["version"] == version
        assert found.json()["results"][0]["item_id"] in ("rocket", "rocket-mirror")
        similar = http.get("/v1/items/coffee/similar", params={"k": 3}).json()
        assert similar["results"][0]["item_id"] == "coffee-mirror"
        thumbnail = http.get(similar["results"][0]["image_url"])
        assert thumbnail.content == (photo_catalog.parent / "coffee-mirror.png").read_bytes()

    # SIGTERM (what the kubelet sends after preStop) ends the server cleanly within the grace period.
    grace = pod.pod.get("terminationGracePeriodSeconds", 30)
    subprocess.run([docker(), "stop", "--time", str(grace), name], check=True, capture_output=True, timeout=grace + 60)
    stopped = state(name)
    assert stopped["ExitCode"] == 0 and not stopped["OOMKilled"], logs(name)[-3000:]
