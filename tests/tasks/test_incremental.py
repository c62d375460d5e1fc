"""Incremental embedding: unchanged images reuse the last committed version's vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import ImageOps

from imagesearch.artifacts import committed_versions
from imagesearch.index_store import EMBEDDINGS, read_items
from imagesearch.repository import open_repository
from tests.conftest import photo, png_bytes
from tests.tasks.conftest import run_step

STEPS_AFTER_SNAPSHOT = ("build_index", "evaluate", "publish")


def build(workspace: Path, catalog: Path, repository: Path, version: str, *flags: str) -> dict[str, dict]:
    summaries = {}
    common = ("--catalog", str(catalog), "--repository", str(repository), "--version", version)
    result = run_step("snapshot", workspace, *common, *flags)
    assert result.code == 0, result.stderr
    summaries["snapshot"] = result.summary
    for step in ("preprocess", "embed"):
        result = run_step(step, workspace, "--shard", "0", "--repository", str(repository),
                          *(flags if step == "preprocess" else ()))
        assert result.code == 0, result.stderr
        summaries[step] = result.summary
    for step in STEPS_AFTER_SNAPSHOT:
        result = run_step(step, workspace, *(["--repository", str(repository)] if step == "publish" else []))
        assert result.code == 0, result.stderr
        summaries[step] = result.summary
    return summaries


def test_unchanged_catalog_embeds_nothing_and_changed_image_is_re_embedded(
    tmp_path: Path, repository: Path, photo_catalog: Path, published_repository: tuple[Path, str]
) -> None:
    first_version = published_repository[1]
    again = build(tmp_path / "ws1", photo_catalog, repository, "20260105T000000Z")
    assert again["snapshot"]["previous_version"] == first_version
    assert again["embed"]["embedded"] == 0 and again["embed"]["reused"] == 20
    old = np.load(repository / "indexes" / first_version / EMBEDDINGS)
    new = np.load(repository / "indexes" / "20260105T000000Z" / EMBEDDINGS)
    assert np.array_equal(old, new)

    catalog_dir = tmp_path / "catalog"
    shutil.copytree(photo_catalog.parent, catalog_dir)
    (catalog_dir / "coffee.png").write_bytes(png_bytes(ImageOps.grayscale(photo("rocket")).convert("RGB")))
    changed = build(tmp_path / "ws2", catalog_dir / photo_catalog.name, repository, "20260106T000000Z")
    assert changed["embed"]["embedded"] == 1 and changed["embed"]["reused"] == 19
    items = read_items(repository / "indexes" / "20260106T000000Z" / "items.parquet")
    row = items["item_id"].index("coffee")
    latest = np.load(repository / "indexes" / "20260106T000000Z" / EMBEDDINGS)
    assert float(latest[row] @ old[row]) < 0.9

    full = build(tmp_path / "ws3", photo_catalog, repository, "20260107T000000Z", "--full-rebuild")
    assert full["embed"]["embedded"] == 20 and full["embed"]["reused"] == 0
    assert committed_versions(open_repository(str(repository)))[-1] == "20260107T000000Z"
