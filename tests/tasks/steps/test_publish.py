"""publish: a version appears whole with its _COMMIT last, idempotently, on a local folder or GCS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagesearch.artifacts import committed_versions, read_manifest
from imagesearch.repository import LocalRepository, open_repository
from tasks.workspace import Workspace
from tests.conftest import ROOT
from tests.tasks.conftest import run_step


def test_publish_is_idempotent_and_an_interrupted_publish_is_invisible(
    evaluated_workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluation = run_step("evaluate", evaluated_workspace)
    assert evaluation.code == 0, evaluation.stderr
    assert set(evaluation.summary["metrics"]) >= {"recall_at_10", "near_duplicate_top1", "category_precision_at_10"}
    repo_path = str(tmp_path / "repo")

    original_put = LocalRepository.put_bytes

    def crash_before_commit(self: LocalRepository, key: str, data: bytes, **options: bool) -> bool:
        if key.endswith("_COMMIT"):
            raise OSError("connection reset while writing _COMMIT")
        return original_put(self, key, data, **options)

    monkeypatch.setattr(LocalRepository, "put_bytes", crash_before_commit)
    crashed = run_step("publish", evaluated_workspace, "--repository", repo_path)
    assert crashed.code == 1 and "connection reset" in crashed.stderr
    assert committed_versions(open_repository(repo_path)) == []
    monkeypatch.setattr(LocalRepository, "put_bytes", original_put)

    first = run_step("publish", evaluated_workspace, "--repository", repo_path)
    second = run_step("publish", evaluated_workspace, "--repository", repo_path)
    assert first.code == 0 and first.summary["uploaded"] is True
    assert second.code == 0 and second.summary["uploaded"] is False
    manifest = read_manifest(open_repository(repo_path), "20260301T000000Z")
    assert manifest.metrics == evaluation.summary["metrics"]
    assert manifest.model.model_id and manifest.index["params"]["kind"] == "brute_force"


def test_whole_chain_on_gcs(gcs_bucket: str, gcs_emulator: str, photo_catalog: Path) -> None:
    """Catalog, images, workspace and model repository all in gs:// (the emulator)."""
    bucket = open_repository(gcs_bucket)
    for path in photo_catalog.parent.iterdir():
        bucket.put_file(f"catalog/{path.name}", path)
    result = subprocess.run(
        [sys.executable, "-m", "tasks.operations.run_all", "--catalog", f"{gcs_bucket}/catalog/{photo_catalog.name}",
         "--repository", f"{gcs_bucket}/models", "--version", "20260401T000000Z", "--no-deploy"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_EMULATOR_HOST": gcs_emulator,
             "IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1": "0.5", "IMAGESEARCH_CATALOG_PREFIXES": f"{gcs_bucket}/catalog/"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    models = open_repository(f"{gcs_bucket}/models")
    assert committed_versions(models) == ["20260401T000000Z"]
    assert read_manifest(models, "20260401T000000Z").item_count == 20
    workspace = Workspace(f"{gcs_bucket}/models/runs/20260401T000000Z")
    assert workspace.run_info()["catalog_uri"].startswith("gs://")
