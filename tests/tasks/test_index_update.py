"""Index work in proportion to change: an hourly run updates the previous version's tree index (deleting the rows of
removed and changed items, upserting the new vectors) into a new version; it builds in full when the model, the
projection or the parameters change, on drift or imbalance, or when the previous index cannot be read safely."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from PIL import ImageOps

from imagesearch.artifacts import read_manifest
from imagesearch.catalog import serialize_catalog
from imagesearch.index import IndexParams
from imagesearch.index_store import EMBEDDINGS, ITEMS, load_index, read_items
from imagesearch.manifest import Manifest
from imagesearch.projection import IdentityProjection
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks.index_update import Changes, why_full, why_unhealthy
from tests.conftest import catalog_items, photo, png_bytes
from tests.security.test_tampered_versions import Trap, reseal
from tests.tasks.conftest import run_steps

FIRST, SECOND, THIRD = "20260201T000000Z", "20260201T010000Z", "20260201T020000Z"


@pytest.fixture(autouse=True)
def small_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 20-photo catalog gets a tree index (not brute force), and nothing is served. A 4-leaf tree searching
    one leaf finds about half of the exact top 10 here and a near-duplicate a third of the time: the gate's floors
    are off (search quality is tests/imagesearch/test_index_update.py's to check, on an index large enough to mean
    something)."""
    monkeypatch.setenv("IMAGESEARCH_BRUTE_FORCE_BELOW", "16")
    monkeypatch.setenv("IMAGESEARCH_MIN_RECALL_AT_10", "0")
    monkeypatch.setenv("IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1", "0")
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))


def manifest_of(repository: Path, version: str) -> Manifest:
    return read_manifest(open_repository(str(repository)), version)


def changed_catalog(photo_catalog: Path, target: Path) -> Path:
    """The catalog without its two cameras, and coffee.png with new bytes under the same URI."""
    shutil.copytree(photo_catalog.parent, target)
    (target / "coffee.png").write_bytes(png_bytes(ImageOps.grayscale(photo("rocket")).convert("RGB")))
    catalog = target / photo_catalog.name
    items = [item for item in catalog_items(catalog) if not item.item_id.startswith("camera")]
    catalog.write_bytes(serialize_catalog(items, "csv"))
    return catalog


@pytest.fixture
def first(tmp_path: Path, photo_catalog: Path) -> Path:
    repository = tmp_path / "repo"
    run = run_steps(tmp_path / "ws1", photo_catalog, repository, FIRST, deploy=False)
    assert run["build_index"]["index"] == "full" and run["build_index"]["params"]["kind"] == "tree_ah"
    return repository


def test_an_hourly_run_updates_the_previous_index_into_a_new_version(
        tmp_path: Path, photo_catalog: Path, first: Path) -> None:
    before = {path.relative_to(first): path.read_bytes() for path in (first / "indexes" / FIRST).rglob("*") if path.is_file()}
    run = run_steps(tmp_path / "ws2", changed_catalog(photo_catalog, tmp_path / "catalog"), first, SECOND, deploy=False)

    assert run["build_index"]["index"] == "update" and run["build_index"]["embedded"] == 1, run["build_index"]
    lineage = manifest_of(first, SECOND).index["lineage"]
    assert (lineage["built"], lineage["base_version"], lineage["items_at_build"]) == ("update", FIRST, 20)
    assert lineage["changed_since_build"] == 4  # two cameras and coffee's old vector deleted, coffee's new one added
    assert manifest_of(first, SECOND).index["params"] == manifest_of(first, FIRST).index["params"]
    # The previous version is untouched: the update wrote a new one.
    assert before == {path.relative_to(first): path.read_bytes() for path in (first / "indexes" / FIRST).rglob("*")
                      if path.is_file()}

    loaded = load_index(first / "indexes" / SECOND, manifest_of(first, SECOND).model.model_id)
    ids = loaded.items["item_id"]
    assert len(ids) == 18 and not [item_id for item_id in ids if item_id.startswith("camera")]
    # Row i of the index is item i: the searcher's rows are the projected embeddings, in the items' order.
    raw = np.load(first / "indexes" / SECOND / EMBEDDINGS)
    np.testing.assert_allclose(loaded.embeddings, loaded.projection.apply(raw), atol=1e-5)
    old = dict(zip(read_items(first / "indexes" / FIRST / ITEMS)["item_id"], np.load(first / "indexes" / FIRST / EMBEDDINGS),
                   strict=True))
    assert all(np.array_equal(old[item_id], raw[row]) for row, item_id in enumerate(ids) if item_id != "coffee")
    assert float(old["coffee"].astype(np.float32) @ raw[ids.index("coffee")].astype(np.float32)) < 0.9
    # A deleted item never comes back: not even for its own vector as the query.
    found, _ = loaded.vectors.search(loaded.project(np.stack([old["camera"], old["coffee"]]).astype(np.float32)), 18)
    assert set(found.ravel().tolist()) <= set(range(18))


def test_too_much_change_since_the_full_build_builds_in_full(
        tmp_path: Path, photo_catalog: Path, first: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_INDEX_UPDATE_MAX_CHANGED", "0.1")
    run = run_steps(tmp_path / "ws2", changed_catalog(photo_catalog, tmp_path / "catalog"), first, SECOND, deploy=False)
    assert run["build_index"]["index"] == "full"
    assert "4 items changed since the index was built in full with 20 (20.0% > " in run["build_index"]["full_build_reason"]
    lineage = manifest_of(first, SECOND).index["lineage"]
    assert (lineage["built"], lineage["base_version"], lineage["changed_since_build"]) == ("full", SECOND, 0)


def test_a_previous_index_holding_an_object_array_is_never_opened(
        tmp_path: Path, photo_catalog: Path, first: Path) -> None:
    folder = first / "indexes" / FIRST
    marker = tmp_path / "UNPICKLED"
    np.save(folder / "scann" / "datapoint_to_token.npy", np.array([Trap(marker)], dtype=object), allow_pickle=True)
    reseal(folder)  # listed with its real checksum, as someone with write access to the repository could
    run = run_steps(tmp_path / "ws2", changed_catalog(photo_catalog, tmp_path / "catalog"), first, SECOND, deploy=False)
    assert run["build_index"]["index"] == "full"
    assert "cannot be opened" in run["build_index"]["full_build_reason"]
    assert "would be unpickled" in run["build_index"]["full_build_reason"]
    assert not marker.exists()


def test_an_unlisted_pickle_beside_the_previous_index_is_never_opened(
        tmp_path: Path, photo_catalog: Path, first: Path) -> None:
    marker = tmp_path / "UNPICKLED"
    (first / "indexes" / FIRST / "scann" / "scann_docids.pkl").write_bytes(pickle.dumps(Trap(marker)))
    run = run_steps(tmp_path / "ws2", changed_catalog(photo_catalog, tmp_path / "catalog"), first, SECOND, deploy=False)
    assert run["build_index"]["index"] == "update" and not marker.exists()


def tree_manifest(**index: Any) -> Manifest:
    params = IndexParams(kind="tree_ah", num_leaves=100, leaves_to_search=5, training_sample_size=10_000, reorder=250)
    projection = IdentityProjection(8)
    record = {**projection.describe(), "sha256": "0" * 64}
    lineage = {"built": "full", "reason": "", "base_version": FIRST, "items_at_build": 10_000, "changed_since_build": 0,
               "health_at_build": {}, "health": {}}
    data = {"version": FIRST, "created_at": "2026-02-01T00:00:00+00:00", "item_count": 10_000,
            "model": {"name": "m", "weights_sha256": "0" * 64, "model_id": "model-a", "dim": 8},
            "index": {"params": params.to_dict(), "projection": record, "lineage": lineage, **index}}
    return msgspec.convert(data, Manifest)


def test_why_an_index_is_built_in_full() -> None:
    settings = Settings.from_env({"IMAGESEARCH_WHITENING_MIN_ITEMS": "100000"})
    manifest = tree_manifest()
    chosen = IndexParams(**manifest.index["params"])
    few = Changes(np.arange(10), np.arange(10), np.zeros(0, np.int64))

    def why(**changes: Any) -> str:
        args = {"manifest": manifest, "model_id": "model-a", "params": chosen, "given": None, "change": few,
                "count": 10_000, "settings": settings, **changes}
        return why_full(**args)

    assert why() == ""
    assert "built with model model-a" in why(model_id="model-b")
    assert "only a tree index is updated" in why(params=IndexParams(kind="brute_force"))
    assert "parameters change (reorder)" in why(params=IndexParams(**{**chosen.to_dict(), "reorder": 100}))
    assert why(params=IndexParams(**{**chosen.to_dict(), "num_leaves": 150})) == ""
    assert "want 250 leaves, the previous index has 100" in why(params=IndexParams(**{**chosen.to_dict(), "num_leaves": 250}))
    assert why(given=IdentityProjection(8)) == ""
    assert "learn a pca-whitening projection" in why(settings=Settings.from_env({}))
    assert "the projection changes" in why(manifest=tree_manifest(projection={"kind": "linear-head", "projection_id": "x"}))
    assert "records no index lineage" in why(manifest=tree_manifest(lineage=None))
    assert "records no index lineage" in why(manifest=tree_manifest(lineage={"items_at_build": "many"}))
    assert "records no projection" in why(manifest=tree_manifest(projection=None))
    many = Changes(np.arange(2000), np.arange(1000), np.zeros(0, np.int64))
    assert "3000 items changed since the index was built in full with 10000 (30.0% >" in why(change=many)


def test_why_an_updated_index_is_dropped() -> None:
    settings = Settings.from_env({})
    at_build = {"avg_quantization_error": 1.0, "partition_weighted_avg_relative_imbalance": 0.1}
    assert why_unhealthy({"avg_quantization_error": 1.04, "partition_weighted_avg_relative_imbalance": 0.3}, at_build,
                         settings) == ""
    assert "imbalance grew by 0.300" in why_unhealthy({**at_build, "partition_weighted_avg_relative_imbalance": 0.4},
                                                      at_build, settings)
    assert "quantization error grew by 10.0%" in why_unhealthy({**at_build, "avg_quantization_error": 1.1}, at_build,
                                                               settings)
