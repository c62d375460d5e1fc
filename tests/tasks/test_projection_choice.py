"""Which projection a run builds its index with: given (a path, else the workspace's), else learned on its vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.index_store import StoredVectors, write_vectors
from imagesearch.projection import IdentityProjection, LinearHead, PcaWhitening
from imagesearch.settings import Settings
from imagesearch.vectors import l2_normalize
from tasks import projection_choice
from tasks.cli import StepFailed
from tasks.workspace import LAYOUT, Workspace


def head(in_dim: int = 16, out_dim: int = 4, seed: int = 0) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(mean=np.zeros(in_dim, np.float32), weight=rng.normal(size=(in_dim, out_dim)).astype(np.float32))


def stored(tmp_path: Path, count: int) -> StoredVectors:
    raw = l2_normalize(np.random.default_rng(1).normal(size=(count, 16)).astype(np.float32))
    write_vectors(tmp_path / "embeddings.npy", [raw], raw.shape)
    return StoredVectors(tmp_path / "embeddings.npy")


def test_snapshot_places_a_given_head_and_a_later_try_without_one_removes_it(tmp_path: Path) -> None:
    workspace = Workspace(str(tmp_path / "ws"))
    (tmp_path / "head.npz").write_bytes(head().to_bytes())
    assert projection_choice.plan(workspace, str(tmp_path / "head.npz"), 16) == head().describe()
    assert workspace.exists(LAYOUT.PROJECTION.key)
    assert projection_choice.given(workspace, None, 16).projection_id == head().projection_id  # type: ignore[union-attr]
    (tmp_path / "other.npz").write_bytes(head(seed=1).to_bytes())
    assert projection_choice.given(workspace, str(tmp_path / "other.npz"), 16).projection_id == \
        head(seed=1).projection_id  # type: ignore[union-attr]  # build_index's own --projection wins
    assert projection_choice.plan(workspace, None, 16) is None
    assert not workspace.exists(LAYOUT.PROJECTION.key) and projection_choice.given(workspace, None, 16) is None


def test_a_head_for_other_vectors_or_a_broken_one_fails_the_step(tmp_path: Path) -> None:
    workspace = Workspace(str(tmp_path / "ws"))
    (tmp_path / "head.npz").write_bytes(head(in_dim=8).to_bytes())
    with pytest.raises(StepFailed, match="takes 8-d vectors; the run's model makes 16-d"):
        projection_choice.plan(workspace, str(tmp_path / "head.npz"), 16)
    assert not workspace.exists(LAYOUT.PROJECTION.key)
    workspace.put_bytes(LAYOUT.PROJECTION.key, b"PK\x03\x04 not really")
    with pytest.raises(StepFailed, match=r"the workspace's model/projection\.npz: not a valid projection file"):
        projection_choice.given(workspace, None, 16)


def test_with_none_given_a_whitening_is_learned_once_the_index_is_large_enough(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMAGESEARCH_WHITENING_MIN_ITEMS": "50", "IMAGESEARCH_WHITENING_DIMS": "8"})
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small = projection_choice.fitted(stored(tmp_path / "small", 49), settings)
    assert isinstance(small, IdentityProjection) and small.dim == 16
    vectors = stored(tmp_path / "large", 80)
    large = projection_choice.fitted(vectors, settings)
    expected = PcaWhitening.fit(vectors.rows(0, 80), 8, 0.3)
    assert isinstance(large, PcaWhitening) and large.projection_id == expected.projection_id
    off = Settings.from_env({"IMAGESEARCH_WHITENING_DIMS": "0"})
    assert isinstance(projection_choice.fitted(vectors, off), IdentityProjection)
