"""Incremental runs: change detection from catalog metadata, work-sized shards, reuse, and hours with nothing to do."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from PIL import ImageOps

from imagesearch import gitops
from imagesearch.artifacts import committed_versions
from imagesearch.catalog import serialize_catalog
from imagesearch.index_store import EMBEDDINGS, ITEMS, read_items
from imagesearch.manifest import COMMIT, MANIFEST, Manifest
from imagesearch.projection import LinearHead
from imagesearch.repository import open_repository
from tasks.plan import SNAPSHOT_FIELDS
from tasks.steps import preprocess
from tasks.workspace import Workspace
from tests.conftest import catalog_items, photo, png_bytes
from tests.gitops.support import bootstrapped, clone
from tests.tasks.conftest import run_step, run_steps


class CountingFetches:
    """Counts every image read (the one store every fetch goes through; the catalog file itself is not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.uris: list[str] = []
        original = preprocess.uri_reader.read_bytes

        def counting(uri: str, *args: Any, **kwargs: Any) -> bytes:
            if not uri.endswith(".csv"):
                self.uris.append(uri)
            return original(uri, *args, **kwargs)

        monkeypatch.setattr(preprocess.uri_reader, "read_bytes", counting)


@pytest.fixture(autouse=True)
def no_gitops_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is served unless a test bootstraps a GitOps repo (never the developer's data/gitops.git)."""
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))


def build(workspace: Path, catalog: Path, repository: Path, version: str, *, deploy: bool = False) -> dict[str, Any]:
    """Every step in order with its real argv, as the local runner runs them; the summaries."""
    return run_steps(workspace, catalog, repository, version, deploy=deploy)


def vectors(repository: Path, version: str) -> dict[str, np.ndarray]:
    ids = read_items(repository / "indexes" / version / ITEMS)["item_id"]
    return dict(zip(ids, np.load(repository / "indexes" / version / EMBEDDINGS).astype(np.float32), strict=True))


def copy_catalog(photo_catalog: Path, target: Path) -> Path:
    shutil.copytree(photo_catalog.parent, target)
    return target / photo_catalog.name


def test_an_unchanged_catalog_fetches_nothing_and_reuses_every_vector(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetches = CountingFetches(monkeypatch)
    again = build(tmp_path / "ws", photo_catalog, repository, "20260105T000000Z")
    assert again["snapshot"]["previous_version"] == published_repository[1]
    assert again["snapshot"]["shard_ids"] == [] and again["snapshot"]["to_fetch"] == 0
    assert fetches.uris == []  # no image was read: not even to hash it
    assert again["build_index"]["reused"] == 20 and again["build_index"]["embedded"] == 0
    old, new = vectors(repository, published_repository[1]), vectors(repository, "20260105T000000Z")
    assert all(np.array_equal(old[item_id], new[item_id]) for item_id in old)
    assert again["evaluate"]["metrics"]["near_duplicate_images"] == 20  # from the samples stored with the version


def test_changed_metadata_refetches_and_new_bytes_get_a_new_vector(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = copy_catalog(photo_catalog, tmp_path / "catalog")
    items = catalog_items(catalog)
    bumped = {"chelsea", "coffee"}
    later = [replace(item, updated_at=item.updated_at + timedelta(hours=1)) if item.item_id in bumped else item
             for item in items]
    catalog.write_bytes(serialize_catalog(later, "csv"))
    # coffee.png gets new bytes in place (same URI); chelsea's bytes stay the same, only updated_at moved.
    (catalog.parent / "coffee.png").write_bytes(png_bytes(ImageOps.grayscale(photo("rocket")).convert("RGB")))
    fetches = CountingFetches(monkeypatch)
    run = build(tmp_path / "ws", catalog, repository, "20260106T000000Z")

    # The copied catalog's images have other URIs, so all are fetched and hashed; only coffee has new bytes.
    assert run["build_index"]["embedded"] == 1 and run["build_index"]["reused"] == 19
    assert {Path(uri).stem for uri in fetches.uris} >= bumped
    old, new = vectors(repository, published_repository[1]), vectors(repository, "20260106T000000Z")
    assert float(old["coffee"] @ new["coffee"]) < 0.9
    assert np.array_equal(old["chelsea"], new["chelsea"])

    # The next hour, nothing changed since this version: nothing is fetched.
    fetches.uris.clear()
    hour_later = build(tmp_path / "ws2", catalog, repository, "20260106T010000Z")
    assert fetches.uris == [] and hour_later["build_index"]["reused"] == 20


def test_removed_items_are_gone_from_the_next_version(tmp_path: Path, repository: Path, photo_catalog: Path) -> None:
    items = catalog_items(photo_catalog)
    catalog = tmp_path / "catalog-without-cameras.csv"  # image URIs are absolute: the same images
    catalog.write_bytes(serialize_catalog([item for item in items if not item.item_id.startswith("camera")], "csv"))
    run = build(tmp_path / "ws", catalog, repository, "20260107T000000Z")
    assert run["snapshot"]["removed"] == 2 and run["snapshot"]["shard_ids"] == []
    ids = read_items(repository / "indexes" / "20260107T000000Z" / ITEMS)["item_id"]
    assert len(ids) == 18 and not [item_id for item_id in ids if item_id.startswith("camera")]


def rewrite_manifest(repository: Path, version: str, **changes: Any) -> None:
    """Re-seal a committed version's manifest with ``changes`` (a version as another build would have made it)."""
    folder = repository / "indexes" / version
    manifest = Manifest.decode((folder / MANIFEST).read_bytes())
    data = msgspec.structs.replace(manifest, **changes).encode()
    (folder / MANIFEST).write_bytes(data)
    (folder / COMMIT).write_text(hashlib.sha256(data).hexdigest() + "\n")


def test_a_model_change_rebuilds_everything_and_says_why(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str]
, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    version = published_repository[1]
    manifest = Manifest.decode((repository / "indexes" / version / MANIFEST).read_bytes())
    rewrite_manifest(repository, version, model=msgspec.structs.replace(manifest.model, model_id="older-model"))
    run = build(tmp_path / "ws", photo_catalog, repository, "20260108T000000Z")
    assert f"full rebuild: the previous version {version} cannot be reused" in caplog.text
    assert "built with model older-model" in caplog.text
    assert run["snapshot"]["to_fetch"] == 20 and run["build_index"]["embedded"] == 20


@pytest.mark.parametrize("damage", ["items", "embeddings", "commit"])
def test_a_missing_or_corrupt_previous_version_means_a_full_rebuild(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str], damage: str
, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    folder = repository / "indexes" / published_repository[1]
    if damage == "items":
        (folder / ITEMS).write_bytes((folder / ITEMS).read_bytes()[:-10] + b"0123456789")
    elif damage == "embeddings":
        (folder / EMBEDDINGS).write_bytes((folder / EMBEDDINGS).read_bytes()[:-100])
    else:
        (folder / COMMIT).unlink()
    run = build(tmp_path / "ws", photo_catalog, repository, "20260109T000000Z")
    assert "full rebuild:" in caplog.text
    assert run["snapshot"]["to_fetch"] == 20 and run["build_index"]["embedded"] == 20


def test_a_bit_flip_in_the_reused_vectors_stops_the_run_rather_than_index_a_wrong_vector(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str]
) -> None:
    path = repository / "indexes" / published_repository[1] / EMBEDDINGS
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    workspace = tmp_path / "ws"
    assert run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", str(repository)).code == 0
    result = run_step("build_index", workspace)
    assert result.code == 2 and "fails its checksum" in result.stderr and "full_rebuild" in result.stderr
    assert not Workspace(str(workspace)).exists("build/index.json")


def test_a_run_with_nothing_to_do_publishes_nothing_and_commits_nothing(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    config = bootstrapped(tmp_path, str(repository))
    gitops.bump(config, published_repository[1], open_repository(str(repository)))
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", config.url)
    head = clone(config, tmp_path / "before").head()
    fetches = CountingFetches(monkeypatch)
    run = build(tmp_path / "ws", photo_catalog, repository, "20260110T000000Z", deploy=True)
    assert run["snapshot"]["nothing_changed"] is True and run["snapshot"]["shard_ids"] == []
    for step in ("build_index", "evaluate", "publish", "deploy"):  # every step after the shards
        assert run[step]["nothing_changed"] is True, step
        assert run[step]["message"].startswith("nothing changed: ")
    assert "nothing changed: catalog snapshot" in caplog.text
    assert fetches.uris == []
    assert committed_versions(open_repository(str(repository))) == [published_repository[1]]
    assert clone(config, tmp_path / "after").head() == head  # no commit, so no rollout

    # A full rebuild is never "nothing changed".
    full = run_step("snapshot", tmp_path / "ws-full", "--catalog", str(photo_catalog), "--repository", str(repository),
                    "--full-rebuild")
    assert full.summary["nothing_changed"] is False and full.summary["to_fetch"] == 20


def test_changed_items_are_sharded_and_each_lands_in_exactly_one_shard(
    tmp_path: Path, repository: Path, photo_catalog: Path
) -> None:
    items = catalog_items(photo_catalog)
    changed = {item.item_id for item in items[::3]}
    catalog = tmp_path / "catalog-changed.csv"
    catalog.write_bytes(serialize_catalog(
        [replace(item, updated_at=item.updated_at + timedelta(days=1)) if item.item_id in changed else item
         for item in items], "csv"))
    result = run_step("snapshot", tmp_path / "ws", "--catalog", str(catalog), "--repository", str(repository),
                      "--shard-size", "2")
    assert result.code == 0, result.stderr
    workspace = Workspace(str(tmp_path / "ws"))
    sharded = [record["item_id"] for shard in result.summary["shard_ids"]
               for record in workspace.read_jsonl(f"shards/{shard:05d}/items.jsonl")]
    assert sorted(sharded) == sorted(changed) and len(result.summary["shard_ids"]) == 4  # 7 items, 2 per shard


def test_a_new_head_rebuilds_the_search_space_from_the_stored_vectors_and_then_nothing_changed(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A catalog unchanged since the served version, with a new head: no image is fetched or embedded again, the
    stored raw vectors are projected with the head; once that version is served, the same head is nothing to do."""
    config = bootstrapped(tmp_path, str(repository))
    gitops.bump(config, published_repository[1], open_repository(str(repository)))
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", config.url)
    weight, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((1280, 32)))
    head = LinearHead(mean=np.zeros(1280, np.float32), weight=weight.astype(np.float32))
    (tmp_path / "head.npz").write_bytes(head.to_bytes())
    given = ("--catalog", str(photo_catalog), "--repository", str(repository), "--projection", str(tmp_path / "head.npz"))
    fetches = CountingFetches(monkeypatch)
    snapshot = run_step("snapshot", tmp_path / "ws", *given, "--version", "20260111T000000Z").summary
    assert snapshot["nothing_changed"] is False and snapshot["to_fetch"] == 0 and snapshot["shard_ids"] == []
    assert snapshot["projection"]["projection_id"] == head.projection_id
    built = run_step("build_index", tmp_path / "ws").summary  # the head snapshot placed in the workspace
    assert built["reused"] == 20 and built["embedded"] == 0
    assert built["projection"]["projection_id"] == head.projection_id
    for step in ("evaluate", "publish"):
        assert run_step(step, tmp_path / "ws", "--repository", str(repository)).code == 0, step
    assert fetches.uris == []
    old, new = vectors(repository, published_repository[1]), vectors(repository, "20260111T000000Z")
    assert all(np.array_equal(old[item_id], new[item_id]) for item_id in old)  # the raw vectors, reused as stored
    manifest = Manifest.decode((repository / "indexes" / "20260111T000000Z" / MANIFEST).read_bytes())
    assert manifest.index["projection"]["projection_id"] == head.projection_id

    gitops.bump(config, "20260111T000000Z", open_repository(str(repository)))
    again = run_step("snapshot", tmp_path / "ws-again", *given).summary
    assert again["nothing_changed"] is True and again["serving_version"] == "20260111T000000Z"
    learned = run_step("snapshot", tmp_path / "ws-learned", *given[:4]).summary  # no head: a whitening is learned
    assert learned["nothing_changed"] is False and learned["projection"] is None


def per_row_snapshot_sha256(items: list[dict[str, Any]]) -> str:
    """The snapshot hash as versions built before the column hash recorded it: one JSON list per item."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item[name] for name in SNAPSHOT_FIELDS], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def test_a_served_version_hashed_the_old_way_is_rebuilt_once_reusing_every_vector(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The snapshot hash changed form once: the first run after it builds one new version, fetching and embedding
    nothing; once that version is served, the next hour has nothing to do."""
    version = published_repository[1]
    folder = repository / "indexes" / version
    manifest = Manifest.decode((folder / MANIFEST).read_bytes())
    old_hash = per_row_snapshot_sha256(read_items_rows(folder / ITEMS))
    assert old_hash != manifest.catalog["snapshot_sha256"]
    for name in (MANIFEST, COMMIT):
        (folder / name).chmod(0o644)
    (folder / MANIFEST).write_bytes(msgspec.structs.replace(manifest, catalog={**manifest.catalog,
                                                                               "snapshot_sha256": old_hash}).encode())
    (folder / COMMIT).write_text(hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest() + "\n")
    config = bootstrapped(tmp_path, str(repository))
    gitops.bump(config, version, open_repository(str(repository)))
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", config.url)
    fetches = CountingFetches(monkeypatch)
    run = build(tmp_path / "ws", photo_catalog, repository, "20260112T000000Z")
    assert run["snapshot"]["nothing_changed"] is False and run["snapshot"]["to_fetch"] == 0
    assert run["build_index"]["reused"] == 20 and run["build_index"]["embedded"] == 0 and fetches.uris == []
    old, new = vectors(repository, version), vectors(repository, "20260112T000000Z")
    assert all(np.array_equal(old[item_id], new[item_id]) for item_id in old)
    gitops.bump(config, "20260112T000000Z", open_repository(str(repository)))
    again = run_step("snapshot", tmp_path / "ws-again", "--catalog", str(photo_catalog), "--repository", str(repository))
    assert again.summary["nothing_changed"] is True


def read_items_rows(path: Path) -> list[dict[str, Any]]:
    columns = read_items(path)
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
