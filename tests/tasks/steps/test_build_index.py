"""build_index: the version's vectors assembled and indexed; with enough items a whitening is learned, stored
and applied to queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagesearch.artifacts import read_manifest
from imagesearch.index_store import load_index
from imagesearch.repository import open_repository
from tests.conftest import run_pipeline


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
