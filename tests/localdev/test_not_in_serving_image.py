"""``localdev/`` is for one machine only: the serving image's build context and COPY lines leave it out, the
serving code runs without it, and the built image has none of it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagesearch.kustomize import DEPLOYMENT, SEARCH_CONTAINER, find_resource, render
from tests.conftest import ROOT
from tests.docker_support import docker, require_image

DOCKERFILE = ROOT / "docker" / "Dockerfile.serving"


def copied_sources() -> list[str]:
    """The sources of the Dockerfile's COPY instructions from the build context (not ``--from`` stages)."""
    copies = re.findall(r"^COPY\s+(?!--from)(\S+)\s+\S+\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert copies, "no COPY from the build context found"
    return [source.rstrip("/") for source in copies]


def context_allow_list() -> list[str]:
    """What the serving build's .dockerignore lets in: it ignores everything (``*``), then re-includes these."""
    lines = [line.strip() for line in (ROOT / "docker" / "Dockerfile.serving.dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the serving build context must start from nothing"
    return [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]


def test_the_serving_build_leaves_localdev_out() -> None:
    assert (ROOT / "localdev" / "argocd.py").is_file() and (ROOT / "localdev" / "demo.py").is_file()
    for source in (*copied_sources(), *context_allow_list()):
        assert not Path(source).parts[0].startswith("localdev"), source
    assert sorted(copied_sources()) == ["imagesearch", "serving"]
    assert not any(path.stem in ("deploy", "demo") for path in (ROOT / "serving").glob("*.py"))


def test_the_serving_code_runs_without_localdev(tmp_path: Path) -> None:
    """Exactly what the image copies, importable on its own: both containers' entrypoints load, nothing of localdev."""
    for source in copied_sources():
        shutil.copytree(ROOT / source, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
    probe = ("import sys, serving.app, serving.fetch; "
             "assert not [name for name in sys.modules if name.split('.')[0] == 'localdev'], 'localdev imported'")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "localdev").exists()


@pytest.mark.slow
def test_the_built_serving_image_has_no_localdev() -> None:
    """The image the local overlay names (``make images`` builds it) holds the serving code only."""
    spec = find_resource(render(ROOT / "gitops" / "overlays" / "local"), "Deployment", DEPLOYMENT)["spec"]["template"]["spec"]
    image = next(c["image"] for c in spec["containers"] if c["name"] == SEARCH_CONTAINER)
    require_image(image)
    listing = "import json, pathlib; print(json.dumps(sorted(p.name for p in pathlib.Path('/app').iterdir())))"
    result = subprocess.run([docker(), "run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", listing],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["imagesearch", "serving"]
