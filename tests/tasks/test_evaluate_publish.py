from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imagesearch.artifacts import committed_versions, read_manifest
from imagesearch.index_store import load_index
from imagesearch.repository import LocalRepository, open_repository
from tasks.workspace import Workspace
from tests.conftest import ROOT, run_pipeline
from tests.tasks.conftest import run_step


@pytest.fixture
def evaluated_workspace(tmp_path: Path, photo_catalog: Path) -> Path:
    """A workspace taken through build_index (not yet evaluated), with no previous version."""
    workspace = tmp_path / "ws"
    repo = str(tmp_path / "repo")
    assert run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", repo,
                    "--version", "20260301T000000Z").code == 0
    for step in ("preprocess", "embed"):
        assert run_step(step, workspace, "--shard", "0", "--repository", repo).code == 0
    assert run_step("build_index", workspace).code == 0
    return workspace


def test_gate_blocks_an_index_with_shuffled_ids(evaluated_workspace: Path, tmp_path: Path) -> None:
    items_path = evaluated_workspace / "index" / "items.parquet"
    table = pq.read_table(items_path)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), items_path)
    result = run_step("evaluate", evaluated_workspace)
    assert result.code == 2  # permanent: a retry cannot help
    assert "quality gate failed" in result.stderr and "near_duplicate_top1" in result.stderr and "< floor 0.5" in result.stderr
    published = run_step("publish", evaluated_workspace, "--repository", str(tmp_path / "repo"))
    assert published.code == 2 and "has not passed evaluation" in published.stderr
    assert committed_versions(open_repository(str(tmp_path / "repo"))) == []


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
        [sys.executable, "-m", "tasks.run_all", "--catalog", f"{gcs_bucket}/catalog/{photo_catalog.name}",
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


def test_whitening_is_learned_stored_and_applied_to_queries(tmp_path: Path, photo_catalog: Path) -> None:
    repo = tmp_path / "repo"
    result = run_pipeline(photo_catalog, repo, "--version", "20260501T000000Z", env={"IMAGESEARCH_WHITENING_MIN_ITEMS": "10"})
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = read_manifest(open_repository(str(repo)), "20260501T000000Z")
    assert manifest.index["whitening"] == {"dims": 19, "shrinkage": 0.3}
    assert "whitening.npz" in {entry.path for entry in manifest.files}
    index = load_index(repo / "indexes" / "20260501T000000Z", manifest.model.model_id)
    raw = np.load(repo / "indexes" / "20260501T000000Z" / "embeddings.npy")
    assert index.embeddings.shape == (20, 19)
    rows, _ = index.vectors.search(index.project(raw[3]), 1)
    assert rows[0][0] == 3
