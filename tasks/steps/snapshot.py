"""Snapshot: read and validate the catalog, find what changed since the last version, shard the work.

An item is unchanged when its image URI, its ``updated_at`` and its image's change stamp (a local
file's size and mtime, a GCS object's generation and size: metadata, never the bytes) equal those of
the last committed version: its vector is reused and its image is not fetched. Only the other items
are cut into shards for preprocess and embed. When the snapshot (items and stamps), the model and the projection
(``--projection``, else a learned one) equal those of the version the GitOps overlay serves, nothing is built,
published or committed.
"""

from __future__ import annotations

import logging
from typing import Any

from imagesearch.artifacts import is_committed, version_taken
from imagesearch.backbones import weights_file
from imagesearch.catalog import CatalogItem, read_catalog
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.input_policy import InputPolicy
from imagesearch.manifest import check_version, new_version
from imagesearch.stamps import image_stamps
from tasks import cli, projection_choice, unchanged
from tasks.plan import classify, snapshot_sha256, write_plan
from tasks.previous import read_previous
from tasks.served_version import version_to_keep
from tasks.workspace import LAYOUT

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
    # The model of new runs (IMAGESEARCH_BACKBONE): every later step embeds and preprocesses as recorded here.
    embedder = EmbedderConfig.for_settings(settings)
    weights_file(embedder.backbone)  # this image can embed with it: a missing or other weights file fails here
    model_id = embedder.model_id
    previous, why_full = read_previous(repo, args.full_rebuild, model_id)
    if previous is None:
        log.info("full rebuild: %s", why_full)
    existing = workspace.read_json(LAYOUT.RUN.key) if workspace.exists(LAYOUT.RUN.key) else {}
    version = check_version(args.version or existing.get("version") or new_version())
    if is_committed(repo, version):  # a committed version is immutable: its run's files are never rewritten
        raise version_taken(version, repo, "committed")
    snapshot_hash = snapshot_sha256(records)
    serving = None if args.full_rebuild else version_to_keep(settings)
    model = projection_choice.model_choice(repo, args.projection, model_id, args.model_version or "", settings)
    if model is not None:
        log.info("projecting with %s", model.describe())
    with projection_choice.model_file(repo, args.projection, model, model_id) as path:
        projection = projection_choice.plan(workspace, path, embedder.backbone.feature_dim)
    nothing_changed = unchanged.unchanged_since(repo, serving, snapshot_hash, model_id, projection)
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
        "projection": projection,
        "model_version": None if model is None else model.version,
        "model_choice": None if model is None else model.reason,
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
