"""Snapshot: read and validate the catalog, find what changed since the last version, shard the work.

An item is unchanged when its image URI, its ``updated_at`` and its image's change stamp (a local
file's size and mtime, a GCS object's generation and size: metadata, never the bytes) equal those of
the last committed version: its vector is reused and its image is not fetched. Only the other items
are cut into shards for preprocess and embed. When the snapshot (items and stamps) and the model equal
those of the version the GitOps overlay serves, nothing is built, published or committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch import gitops
from imagesearch.artifacts import check_version, is_committed, latest_version, new_version, read_manifest, version_taken
from imagesearch.catalog import COLUMNS, CatalogItem, read_catalog
from imagesearch.embedder_config import EmbedderConfig, model_id_for
from imagesearch.errors import ArtifactError
from imagesearch.input_policy import InputPolicy
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from imagesearch.stamps import image_stamps
from tasks import cli, unchanged
from tasks.previous import PreviousVersion, load_previous
from tasks.workspace import LAYOUT, Workspace

log = logging.getLogger("snapshot")
SNAPSHOT_FIELDS = (*COLUMNS, "image_stamp")
PLAN_FIELDS = ("item_id", "title", "category", "price", "on_sale", "image_uri", "updated_at", "image_stamp")


def deduplicate(items: list[CatalogItem]) -> tuple[list[CatalogItem], int]:
    """One item per item_id, the newest ``updated_at`` winning; catalog order otherwise kept."""
    newest: dict[str, CatalogItem] = {}
    for item in items:
        kept = newest.get(item.item_id)
        if kept is None or item.updated_at >= kept.updated_at:
            newest[item.item_id] = item
    unique = sorted(newest.values(), key=lambda item: item.item_id)
    return unique, len(items) - len(unique)


def plan_shards(count: int, shard_size: int, max_shards: int) -> list[tuple[int, int]]:
    """[start, end) ranges over ``count`` work items: about ``shard_size`` each, at most ``max_shards``; none for 0."""
    if count <= 0:
        return []
    shards = min(max_shards, math.ceil(count / shard_size))
    size = math.ceil(count / shards)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def snapshot_sha256(records: list[dict[str, Any]]) -> str:
    """One hash of everything the version is built from: every item's fields and its image's change stamp."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record[name] for name in SNAPSHOT_FIELDS], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def read_previous(repo: ModelRepository, full_rebuild: bool, model_id: str) -> tuple[PreviousVersion | None, str]:
    """The last committed version to reuse, or None and why everything is fetched and embedded again."""
    if full_rebuild:
        return None, "full rebuild asked for"
    version = latest_version(repo)
    if version is None:
        return None, f"no committed version in {repo.uri} yet"
    try:
        return load_previous(repo, version, model_id), ""
    except ArtifactError as exc:
        return None, f"the previous version {version} cannot be reused ({exc})"


def served_version(settings: Settings) -> str | None:
    """The index version the GitOps overlay serves (None when the GitOps repo cannot be read)."""
    config = gitops.GitOpsConfig.from_settings(settings)
    try:
        return gitops.served_version(config) or None
    except gitops.GitOpsError as exc:
        log.warning("cannot read the version %s serves (%s): building a new version", config.overlay, exc)
        return None


def unchanged_since(repo: ModelRepository, serving: str | None, snapshot_hash: str, model_id: str) -> bool:
    """Whether the served version was built from this very snapshot with this model."""
    if not serving:
        return False
    try:
        manifest = read_manifest(repo, serving)
    except ArtifactError as exc:
        log.warning("the served version %s is not readable here (%s): building a new version", serving, exc)
        return False
    return manifest.catalog.get("snapshot_sha256") == snapshot_hash and manifest.model.model_id == model_id


def classify(records: list[dict[str, Any]], previous: PreviousVersion | None) -> list[int]:
    """Per record, its row in the previous version when its image reference is unchanged, else -1.

    Unchanged: the same item with the same image URI, the same updated_at and the same object stamp.
    Changed items still carry their previous row and image hash, so unchanged bytes are not re-embedded.
    """
    reuse = []
    for record in records:
        row = previous.row_of.get(record["item_id"], -1) if previous is not None else -1
        if row >= 0:
            old = previous.items  # type: ignore[union-attr]
            record["previous_row"], record["previous_sha256"] = row, old["image_sha256"][row]
            same = (old["image_uri"][row] == record["image_uri"] and old["updated_at"][row] == record["updated_at"]
                    and old["image_stamp"][row] == record["image_stamp"])
            if not same:
                row = -1
        reuse.append(row)
    return reuse


def write_plan(workspace: Workspace, records: list[dict[str, Any]], reuse: list[int], previous: PreviousVersion | None,
               shard_size: int, max_shards: int) -> list[tuple[int, int]]:
    """snapshot/items.parquet (every item, its reused row or -1) and one items.jsonl per work shard."""
    sha = previous.items["image_sha256"] if previous is not None else []
    table = pa.table({
        **{name: [record[name] for record in records] for name in PLAN_FIELDS},
        "reuse_row": pa.array(reuse, pa.int64()),
        "image_sha256": [sha[row] if row >= 0 else None for row in reuse],
    })
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    workspace.store.put_bytes(LAYOUT.PLAN.key, buffer.getvalue().to_pybytes())
    work = [record for record, row in zip(records, reuse, strict=True) if row < 0]
    shards = plan_shards(len(work), shard_size, max_shards)
    workspace.store.delete_prefix(LAYOUT.SHARD_ITEMS.top)
    for shard, (start, end) in enumerate(shards):
        workspace.write_jsonl(LAYOUT.SHARD_ITEMS.of(shard), work[start:end])
    return shards


def snapshot(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace = context.args, context.settings, context.workspace
    catalog_uri = args.catalog or settings.pipeline.catalog_uri
    catalog = read_catalog(catalog_uri, InputPolicy.for_catalogs(settings.inputs))
    for error in catalog.errors[:20]:
        log.warning("catalog %s: rejected %s", catalog_uri, error)
    rows = len(catalog.items) + len(catalog.errors)
    if not catalog.items:
        raise cli.StepFailed(f"catalog {catalog_uri} has no valid rows ({len(catalog.errors)} rejected)")
    if len(catalog.errors) / rows > settings.pipeline.max_failure_ratio:
        first = "; ".join(str(error) for error in catalog.errors[:3])
        raise cli.StepFailed(
            f"catalog {catalog_uri}: {len(catalog.errors)} of {rows} rows are invalid, over the "
            f"{settings.pipeline.max_failure_ratio:.0%} limit (first: {first})"
        )
    items, duplicates = deduplicate(catalog.items)
    if args.on_sale_only:
        items = [item for item in items if item.on_sale]
    if args.limit:
        items = items[: args.limit]
    if not items:
        raise cli.StepFailed("no items left after filtering")

    records = [item.to_record() for item in items]
    image_policy = InputPolicy.for_images(settings.inputs, catalog_uri)
    for record, stamp in zip(records, image_stamps([item.image_uri for item in items], image_policy), strict=True):
        record["image_stamp"] = stamp
    repo = context.repository()
    embedder = EmbedderConfig()  # this code's model: every later step embeds and preprocesses as recorded here
    model_id = model_id_for(embedder)
    previous, why_full = read_previous(repo, args.full_rebuild, model_id)
    if previous is None:
        log.info("full rebuild: %s", why_full)
    existing = workspace.read_json(LAYOUT.RUN.key) if workspace.exists(LAYOUT.RUN.key) else {}
    version = check_version(args.version or existing.get("version") or new_version())
    if is_committed(repo, version):  # a committed version is immutable: its run's files are never rewritten
        raise version_taken(version, repo, "committed")
    snapshot_hash = snapshot_sha256(records)
    serving = None if args.full_rebuild else served_version(settings)
    nothing_changed = unchanged_since(repo, serving, snapshot_hash, model_id)
    reuse = classify(records, previous)
    shards = [] if nothing_changed else write_plan(
        workspace, records, reuse, previous, args.shard_size or settings.pipeline.shard_size, settings.pipeline.max_shards)
    workspace.write_jsonl(LAYOUT.REJECTED.key, ({"line": e.line, "reason": e.reason} for e in catalog.errors))
    work = sum(row < 0 for row in reuse)
    info = {
        "version": version,
        "catalog_uri": catalog_uri,
        "repository": repo.uri,
        "snapshot_sha256": snapshot_hash,
        "model_id": model_id,
        "embedder": embedder.to_dict(),
        "items": len(items),
        "to_fetch": 0 if nothing_changed else work,
        "unchanged": len(items) - work,
        "removed": 0 if previous is None else len(previous.row_of.keys() - {record["item_id"] for record in records}),
        "shards": len(shards),
        "previous_version": None if previous is None else previous.version,
        "full_rebuild_reason": why_full,
        "serving_version": serving,
        "nothing_changed": nothing_changed,
        "rejected_rows": len(catalog.errors),
        "duplicates_dropped": duplicates,
    }
    workspace.write_json(LAYOUT.RUN.key, info)
    if nothing_changed:
        log.info("%s", unchanged.message(info))
    else:
        log.info("%d items: %d unchanged (reused from %s), %d to fetch in %d shard(s)", len(items), len(items) - work,
                 info["previous_version"], work, len(shards))
    return {**info, "shard_ids": list(range(len(shards)))}


main = cli.entry("snapshot", snapshot, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
