"""Snapshot: read and validate the catalog, de-duplicate, filter, and split it into shards."""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import sys
from typing import Any

from imagesearch.artifacts import check_version, is_committed, latest_version, new_version, version_taken
from imagesearch.catalog import CatalogItem, read_catalog
from imagesearch.input_policy import InputPolicy
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks import cli
from tasks.workspace import Workspace, shard_key

log = logging.getLogger("snapshot")


def deduplicate(items: list[CatalogItem]) -> tuple[list[CatalogItem], int]:
    """One item per item_id, the newest ``updated_at`` winning; catalog order otherwise kept."""
    newest: dict[str, CatalogItem] = {}
    for item in items:
        kept = newest.get(item.item_id)
        if kept is None or item.updated_at >= kept.updated_at:
            newest[item.item_id] = item
    unique = sorted(newest.values(), key=lambda item: item.item_id)
    return unique, len(items) - len(unique)


def shard_count(count: int, shard_size: int) -> int:
    return max(1, math.ceil(count / shard_size))


def snapshot(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace)
    catalog_uri = args.catalog or settings.catalog_uri
    catalog = read_catalog(catalog_uri, InputPolicy.for_catalogs(settings))
    for error in catalog.errors[:20]:
        log.warning("catalog %s: rejected %s", catalog_uri, error)
    rows = len(catalog.items) + len(catalog.errors)
    if not catalog.items:
        raise cli.StepFailed(f"catalog {catalog_uri} has no valid rows ({len(catalog.errors)} rejected)")
    if len(catalog.errors) / rows > settings.max_failure_ratio:
        first = "; ".join(str(error) for error in catalog.errors[:3])
        raise cli.StepFailed(
            f"catalog {catalog_uri}: {len(catalog.errors)} of {rows} rows are invalid, over the "
            f"{settings.max_failure_ratio:.0%} limit (first: {first})"
        )
    items, duplicates = deduplicate(catalog.items)
    if args.on_sale_only:
        items = [item for item in items if item.on_sale]
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise cli.StepFailed("no items left after filtering")

    repo = open_repository(args.repository or settings.model_repository)
    previous = None if args.full_rebuild else latest_version(repo)
    existing = workspace.read_json("snapshot/run.json") if workspace.exists("snapshot/run.json") else {}
    version = check_version(args.version or existing.get("version") or new_version())
    if is_committed(repo, version):  # a committed version is immutable: its run's files are never rewritten
        raise version_taken(version, repo, "committed")
    shard_size = args.shard_size or settings.shard_size
    shards = shard_count(len(items), shard_size)
    for shard in range(shards):
        workspace.write_jsonl(
            shard_key("shards", shard, "items.jsonl"),
            (item.to_record() for item in items[shard * shard_size : (shard + 1) * shard_size]),
        )
    workspace.write_jsonl("snapshot/errors.jsonl", ({"line": e.line, "reason": e.reason} for e in catalog.errors))
    snapshot_sha = hashlib.sha256("".join(item.item_id + item.image_uri for item in items).encode()).hexdigest()
    info = {
        "version": version,
        "catalog_uri": catalog_uri,
        "snapshot_sha256": snapshot_sha,
        "items": len(items),
        "shards": shards,
        "previous_version": previous,
        "rejected_rows": len(catalog.errors),
        "duplicates_dropped": duplicates,
    }
    workspace.write_json("snapshot/run.json", info)
    return {**info, "shard_ids": list(range(shards))}


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("snapshot", __doc__ or "")
    parser.add_argument("--catalog", help="catalog URI (.csv, .jsonl or .parquet); default from settings")
    parser.add_argument("--repository", help="model repository URI; default from settings")
    parser.add_argument("--version", help="index version to build; default: now (UTC)")
    parser.add_argument("--shard-size", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="keep at most this many items (0: all)")
    parser.add_argument("--on-sale-only", action="store_true")
    parser.add_argument("--full-rebuild", action="store_true", help="do not reuse the previous version's embeddings")
    return cli.run("snapshot", snapshot, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
