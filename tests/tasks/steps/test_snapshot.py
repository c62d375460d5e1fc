from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from imagesearch.backbones import BACKBONES, registered
from imagesearch.catalog import serialize_catalog
from imagesearch.embedder_config import EmbedderConfig
from tasks.workspace import Workspace
from tests.conftest import catalog_items
from tests.tasks.conftest import run_step


def test_snapshot_deduplicates_filters_and_shards(tmp_path: Path, photo_catalog: Path) -> None:
    items = catalog_items(photo_catalog)
    older = replace(items[0], title="stale copy", updated_at=items[0].updated_at.replace(year=2020))
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_bytes(serialize_catalog([older, *items], "jsonl"))
    workspace = tmp_path / "ws"
    result = run_step("snapshot", workspace, "--catalog", str(catalog), "--repository", str(tmp_path / "repo"),
                      "--shard-size", "6", "--version", "20260101T000000Z")
    assert result.code == 0, result.stderr
    assert result.summary["items"] == 20 and result.summary["duplicates_dropped"] == 1
    assert result.summary["shard_ids"] == [0, 1, 2, 3] and result.summary["previous_version"] is None
    shards = [Workspace(str(workspace)).read_jsonl(f"shards/{i:05d}/items.jsonl") for i in range(4)]
    assert [len(s) for s in shards] == [5, 5, 5, 5]  # balanced: 20 items, at most 6 per shard
    kept = next(r for s in shards for r in s if r["item_id"] == items[0].item_id)
    assert kept["title"] != "stale copy"

    on_sale = run_step("snapshot", tmp_path / "ws2", "--catalog", str(catalog), "--repository", str(tmp_path / "repo"),
                       "--on-sale-only", "--limit", "3")
    assert on_sale.code == 0 and on_sale.summary["items"] == 3


def test_snapshot_keeps_the_version_on_retry(tmp_path: Path, photo_catalog: Path) -> None:
    first = run_step("snapshot", tmp_path / "ws", "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"))
    again = run_step("snapshot", tmp_path / "ws", "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"))
    assert first.summary["version"] == again.summary["version"]


def test_a_version_committed_by_another_run_fails_permanently(tmp_path: Path, photo_catalog: Path,
                                                               published_repository: tuple[Path, str]) -> None:
    models, version = published_repository
    taken = run_step("snapshot", tmp_path / "ws", "--catalog", str(photo_catalog), "--repository", str(models),
                     "--version", version)
    assert taken.code == 2
    assert f"index version {version} is already committed in {models}" in taken.stderr
    assert "re-run as a new version" in taken.stderr and not (tmp_path / "ws").exists()


def test_a_committed_workspace_is_never_rewritten(published_repository: tuple[Path, str]) -> None:
    models, version = published_repository
    again = run_step("evaluate", models / "runs" / version)
    assert again.code == 2 and "already committed and immutable; re-run as a new version" in again.stderr


def test_corrupt_catalog_fails_with_a_readable_reason(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,image_uri,title,category,price,on_sale,updated_at\nx,a.png,A,c,free,yes,never\n")
    result = run_step("snapshot", tmp_path / "ws", "--catalog", str(catalog), "--repository", str(tmp_path / "repo"))
    assert result.code == 2
    assert "snapshot failed: catalog" in result.stderr and "no valid rows" in result.stderr
    assert not (tmp_path / "ws" / "snapshot" / "run.json").exists()


def test_mostly_invalid_catalog_is_refused_with_line_numbers(tmp_path: Path, photo_catalog: Path) -> None:
    lines = photo_catalog.read_text().splitlines()
    broken = [lines[0], *lines[1:5], *(line.replace(",2026-", ",oops-") for line in lines[5:])]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(broken) + "\n")
    result = run_step("snapshot", tmp_path / "ws", "--catalog", str(catalog), "--repository", str(tmp_path / "repo"))
    assert result.code == 2
    assert "16 of 20 rows are invalid" in result.stderr and "line 6: updated_at" in result.stderr


def test_the_backbone_of_new_runs_is_recorded_and_another_one_rebuilds_in_full(
        tmp_path: Path, photo_catalog: Path, repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGESEARCH_BACKBONE picks the model the run records for every later step; a previous version embedded with
    another backbone is not reused."""
    monkeypatch.setenv("IMAGESEARCH_BACKBONE", "efficientnet-lite2")
    result = run_step("snapshot", tmp_path / "ws", "--catalog", str(photo_catalog), "--repository", str(repository))
    assert result.code == 0, result.stderr
    lite2 = EmbedderConfig.for_backbone(registered("efficientnet-lite2"))
    info = Workspace(str(tmp_path / "ws")).run_info()
    assert EmbedderConfig.from_dict(info["embedder"]) == lite2 and info["model_id"] == lite2.model_id
    assert info["previous_version"] is None and "was built with model efficientnet-lite0-" in info["full_rebuild_reason"]
    assert info["to_fetch"] == 20


def test_a_backbone_whose_weights_this_image_lacks_fails_the_snapshot(
        tmp_path: Path, photo_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lite0 = registered("efficientnet-lite0")
    other = msgspec.structs.replace(lite0, weights=msgspec.structs.replace(lite0.weights, sha256="ef" * 32))
    monkeypatch.setitem(BACKBONES, lite0.name, other)
    result = run_step("snapshot", tmp_path / "ws", "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"))
    assert result.code == 2 and f"the spec says {'ef' * 32}" in result.stderr
