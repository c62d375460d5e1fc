"""Which projection a run builds its index with: given (a path, else the workspace's), else learned on its vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient

from imagesearch.artifacts import fetch, read_manifest
from imagesearch.embedder import Embedder
from imagesearch.index_store import StoredVectors, load_index, write_vectors
from imagesearch.projection import IdentityProjection, LinearHead, PcaWhitening
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from imagesearch.vectors import l2_normalize
from serving.app import create_app
from serving.search import nearest
from tasks import projection_choice
from tasks.cli import StepFailed
from tasks.operations import models
from tasks.workspace import LAYOUT, Workspace
from tests.conftest import jpeg_bytes, photo
from tests.imagesearch.model_support import backbone_of, publish_version
from tests.serving.conftest import serving_settings
from tests.tasks.conftest import run_step, run_steps
from tests.tasks.test_incremental import CountingFetches


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


def orthonormal_head(seed: int, in_dim: int = 1280, out_dim: int = 32) -> LinearHead:
    weight, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((in_dim, out_dim)))
    return LinearHead(mean=np.zeros(in_dim, np.float32), weight=weight.astype(np.float32))


def test_index_runs_project_with_the_chosen_model_version_and_a_rollback_restores_the_previous(
    tmp_path: Path, repository: Path, photo_catalog: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The newest gated model version projects the index (built from the stored raw vectors: nothing fetched), the
    manifest records it, a served query is embedded and projected with it; after a model rollback the next run
    projects with the previous version; ``none`` means no head."""
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))  # nothing served
    repo = open_repository(str(repository))
    backbone = backbone_of(Settings.from_env())
    older = publish_version(repo, tmp_path / "models", "20260105T000000Z", backbone, projection=orthonormal_head(1))
    newer = publish_version(repo, tmp_path / "models", "20260106T000000Z", backbone, projection=orthonormal_head(2))
    publish_version(repo, tmp_path / "models", "20260107T000000Z", backbone, passed=False, seed=3)
    fetches = CountingFetches(monkeypatch)

    run = run_steps(tmp_path / "ws", photo_catalog, repository, "20260112T000000Z", deploy=False)
    assert run["snapshot"]["model_version"] == "20260106T000000Z" and run["snapshot"]["to_fetch"] == 0
    assert run["snapshot"]["model_choice"] == "the newest gated version"
    assert run["build_index"]["reused"] == 20 and run["build_index"]["embedded"] == 0 and fetches.uris == []
    manifest = read_manifest(repo, "20260112T000000Z")
    assert manifest.index["model_version"] == "20260106T000000Z"
    assert manifest.index["projection"]["projection_id"] == newer.projection_id

    served = fetch(repo, "20260112T000000Z", tmp_path / "served")
    assert served.version == "20260112T000000Z"
    index, embedder = load_index(tmp_path / "served"), Embedder()
    assert index.projection.projection_id == newer.projection_id
    image = jpeg_bytes(photo("retina"))
    expected = nearest(index, newer.apply(embedder.embed_bytes([image]))[0], 5).rows
    with TestClient(create_app(serving_settings(tmp_path / "served"), embedder)) as client:
        response = client.post("/v1/search", params={"k": 5}, files={"image": ("q.jpg", image, "image/jpeg")})
        assert response.status_code == 200, response.text
        assert [hit["item_id"] for hit in response.json()["results"]] == \
            [index.items["item_id"][row] for row in expected.tolist()]

    assert models.main(["rollback", "--reason", "category search got worse", "--repository", str(repository)]) == 0
    again = run_steps(tmp_path / "ws-rollback", photo_catalog, repository, "20260113T000000Z", deploy=False)
    assert again["snapshot"]["model_version"] == "20260105T000000Z"
    assert again["snapshot"]["model_choice"].startswith("pinned: pinned to 20260105T000000Z")
    assert read_manifest(repo, "20260113T000000Z").index["projection"]["projection_id"] == older.projection_id

    off = run_step("snapshot", tmp_path / "ws-none", "--catalog", str(photo_catalog), "--repository", str(repository),
                   "--model-version", "none").summary
    assert off["model_version"] is None and off["projection"] is None and off["model_choice"] == "the run's model_version"
    refused = run_step("snapshot", tmp_path / "ws-bad", "--catalog", str(photo_catalog), "--repository",
                       str(repository), "--model-version", "20260199T000000Z")
    assert refused.code == 2 and "model version '20260199T000000Z'" in refused.stderr and "not committed" in refused.stderr
