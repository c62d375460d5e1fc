"""build_index: the version's vectors assembled and indexed, projected with the projection it is given (a learned
head: ``--projection`` or the workspace's) or, with enough items, a PCA-whitening learned on them; the projection is
stored with the version, recorded in its manifest and applied to queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagesearch.artifacts import read_manifest
from imagesearch.index_store import EMBEDDINGS, load_index, open_index
from imagesearch.projection import PROJECTION, LinearHead
from imagesearch.repository import open_repository
from tasks.workspace import LAYOUT, Workspace
from tests.conftest import run_pipeline
from tests.tasks.conftest import run_step


def test_whitening_is_learned_stored_and_applied_to_queries(tmp_path: Path, photo_catalog: Path) -> None:
    repo = tmp_path / "repo"
    result = run_pipeline(photo_catalog, repo, "--version", "20260501T000000Z", env={"IMAGESEARCH_WHITENING_MIN_ITEMS": "10"})
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = read_manifest(open_repository(str(repo)), "20260501T000000Z")
    recorded = manifest.index["projection"]
    assert (recorded["kind"], recorded["in_dim"], recorded["out_dim"]) == ("pca-whitening", 1280, 19)
    assert recorded["sha256"] == {entry.path: entry.sha256 for entry in manifest.files}[PROJECTION]
    assert "whitening" not in manifest.index
    index = load_index(repo / "indexes" / "20260501T000000Z", manifest.model.model_id)
    raw = np.load(repo / "indexes" / "20260501T000000Z" / "embeddings.npy")
    assert index.embeddings.shape == (20, 19) and index.projection.projection_id == recorded["projection_id"]
    rows, _ = index.vectors.search(index.project(raw[3]), 1)
    assert rows[0][0] == 3


def random_head(in_dim: int, out_dim: int, seed: int = 0) -> LinearHead:
    rng = np.random.default_rng(seed)
    weight, _ = np.linalg.qr(rng.standard_normal((in_dim, out_dim)))
    return LinearHead(mean=np.zeros(in_dim, np.float32), weight=weight.astype(np.float32))


def embedded_workspace(tmp_path: Path, photo_catalog: Path) -> Path:
    workspace = tmp_path / "ws"
    assert run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"),
                    "--version", "20260301T000000Z").code == 0
    for step in ("preprocess", "embed"):
        assert run_step(step, workspace, "--shard", "0").code == 0
    return workspace


def test_a_given_head_projects_the_index(tmp_path: Path, photo_catalog: Path) -> None:
    workspace = embedded_workspace(tmp_path, photo_catalog)
    head = random_head(1280, 48)
    (tmp_path / "head.npz").write_bytes(head.to_bytes())
    result = run_step("build_index", workspace, "--projection", str(tmp_path / "head.npz"))
    assert result.code == 0, result.stderr
    assert result.summary["projection"]["projection_id"] == head.projection_id
    assert result.summary["projection"]["kind"] == "linear-head" and result.summary["projection"]["out_dim"] == 48
    build = Workspace(str(workspace)).read_json(LAYOUT.BUILD.key)
    index = workspace / LAYOUT.INDEX.key
    assert (index / PROJECTION).read_bytes() == head.to_bytes()
    opened = open_index(index, build)
    np.testing.assert_allclose(opened.embeddings, head.apply(np.load(index / EMBEDDINGS)), atol=5e-4)  # float16 rows
    assert opened.projection.projection_id == head.projection_id


def test_a_bad_projection_fails_before_any_work(tmp_path: Path, photo_catalog: Path) -> None:
    workspace = embedded_workspace(tmp_path, photo_catalog)
    (tmp_path / "narrow.npz").write_bytes(random_head(512, 16).to_bytes())
    (tmp_path / "broken.npz").write_bytes(random_head(1280, 16).to_bytes()[:-40])
    for path, message in ((tmp_path / "narrow.npz", "takes 512-d vectors; the run's model makes 1280-d"),
                          (tmp_path / "broken.npz", "not a valid projection file"),
                          (tmp_path / "absent.npz", "No such file")):
        result = run_step("build_index", workspace, "--projection", str(path))
        assert result.code == 2 and message in result.stderr and str(path) in result.stderr, result.stderr
    assert not Workspace(str(workspace)).exists(LAYOUT.BUILD.key)
