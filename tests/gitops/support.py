"""Real git repos and committed model-repository versions for the GitOps tests (no mocks)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from imagesearch import gitops, kustomize
from imagesearch.artifacts import publish, seal
from imagesearch.manifest import Manifest, ModelInfo
from imagesearch.repository import ModelRepository, open_repository

V1, V2, V3 = "20260101T000000Z", "20260102T000000Z", "20260103T000000Z"


PASSED_GATE = {"passed": True, "failures": [], "metrics": {"recall_at_10": {"candidate": 0.99, "floor": 0.9}}}


def committed_versions(root: Path, *versions: str, gate: dict[str, Any] | None = None) -> ModelRepository:
    """A model repository holding tiny but properly sealed and committed versions (with ``gate`` as their report)."""
    repository = open_repository(str(root))
    for version in versions:
        directory = root.parent / f"build-{version}"
        directory.mkdir(parents=True)
        (directory / "scann").mkdir()
        (directory / "scann" / "scann_config.pb").write_bytes(version.encode())  # a name a version may hold
        seal(directory, Manifest(version=version, created_at="2026-01-01T00:00:00+00:00", item_count=1,
                                 model=ModelInfo("test", "0" * 64, "test-model", 4), metrics={"recall_at_10": 0.99},
                                 gate=gate or {}))
        publish(repository, directory)
    return repository


def bootstrapped(tmp_path: Path, model_repository: str | None = None, **options: object) -> gitops.GitOpsConfig:
    """A local bare GitOps repo created from this project's gitops/ folder."""
    config = gitops.GitOpsConfig(url=str(tmp_path / "gitops.git"), author_name="Test Bot", author_email="bot@test",
                                 **options)  # type: ignore[arg-type]
    assert gitops.bootstrap(config, model_repository=model_repository)
    return config


def clone(config: gitops.GitOpsConfig, path: Path) -> gitops.Checkout:
    checkout = gitops.Checkout(config, path)
    checkout.sync()
    return checkout


def log(config: gitops.GitOpsConfig, path: Path) -> list[str]:
    """The branch's commit subjects, newest first."""
    return clone(config, path).git("log", "--format=%s").splitlines()


def rendered_version(config: gitops.GitOpsConfig, path: Path, overlay: str | None = None) -> tuple[str, str]:
    """(index version, ConfigMap name) of the overlay at the branch tip, rendered by real kustomize."""
    checkout = clone(config, path)
    workload = kustomize.read_workload(kustomize.render(checkout.path / (overlay or config.overlay)))
    return workload.version, workload.config_map


def git_output(path: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True).stdout.strip()
