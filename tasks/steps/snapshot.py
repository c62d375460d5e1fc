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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagesearch.artifacts import is_committed, version_taken
from imagesearch.backbones import weights_file
from imagesearch.catalog import read_catalog
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.input_policy import InputPolicy
from imagesearch.manifest import check_version, new_version
from imagesearch.stamps import stamp_column
from tasks import cli, projection_choice, unchanged
from tasks.plan import classify, snapshot_sha256, write_plan
from tasks.previous import read_previous
from tasks.served_version import version_to_keep
from tasks.workspace import LAYOUT

log = logging.getLogger("snapshot")


def deduplicate(items: pa.Table) -> tuple[pa.Table, int]:
    """One item per item_id, the newest ``updated_at`` (``updated_us``) winning, the later row on a tie; sorted by
    item_id (the order of its UTF-8 bytes, which is the order of its code points)."""
    if pc.count_distinct(items.column("item_id")).as_py() == items.num_rows:
        return items.take(pc.sort_indices(items, [("item_id", "ascending")])), 0
    ranked = items.append_column("row", pa.array(np.arange(items.num_rows, dtype=np.int64)))
    order = pc.sort_indices(ranked, [("item_id", "ascending"), ("updated_us", "ascending"), ("row", "ascending")])
    del ranked
    ids = items.column("item_id").take(order).combine_chunks()
    last = np.ones(len(ids), np.bool_)  # the last row of each item_id, in that order, is its newest
    last[:-1] = np.asarray(pc.not_equal(ids[:-1], ids[1:]), np.bool_)
    return items.take(order.filter(pa.array(last))), int((~last).sum())


def snapshot(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace = context.args, context.settings, context.workspace
    catalog_uri = args.catalog or settings.pipeline.catalog_uri
    catalog = read_catalog(catalog_uri, InputPolicy.for_catalogs(settings.inputs))
    for error in catalog.errors[:20]:
        log.warning("catalog %s: rejected %s", catalog_uri, error)
    rows = catalog.table.num_rows + len(catalog.errors)
    if not catalog.table.num_rows:
        raise cli.StepFailed(f"catalog {catalog_uri} has no valid rows ({len(catalog.errors)} rejected)")
    if len(catalog.errors) / rows > settings.pipeline.max_failure_ratio:
        first = "; ".join(str(error) for error in catalog.errors[:3])
        raise cli.StepFailed(
            f"catalog {catalog_uri}: {len(catalog.errors)} of {rows} rows are invalid, over the "
            f"{settings.pipeline.max_failure_ratio:.0%} limit (first: {first})"
        )
    items, duplicates = deduplicate(catalog.table)
    del catalog.table
    items = items.drop_columns(["updated_us"])
    if args.on_sale_only:
        items = items.filter(items.column("on_sale"))
    if args.limit:
        items = items.slice(0, args.limit)
    if not items.num_rows:
        raise cli.StepFailed("no items left after filtering")

    image_policy = InputPolicy.for_images(settings.inputs, catalog_uri)
    items = items.append_column("image_stamp", stamp_column(items.column("image_uri"), image_policy))
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
    snapshot_hash = snapshot_sha256(items)
    serving = None if args.full_rebuild else version_to_keep(settings)
    model = projection_choice.model_choice(repo, args.projection, model_id, args.model_version or "", settings)
    if model is not None:
        log.info("projecting with %s", model.describe())
    with projection_choice.model_file(repo, args.projection, model, model_id) as path:
        projection = projection_choice.plan(workspace, path, embedder.backbone.feature_dim)
    nothing_changed = unchanged.unchanged_since(repo, serving, snapshot_hash, model_id, projection)
    changes = classify(items, previous)
    shards = [] if nothing_changed else write_plan(
        workspace, items, changes, args.shard_size or settings.pipeline.shard_size, settings.pipeline.max_shards)
    workspace.write_jsonl(LAYOUT.REJECTED.key, ({"line": e.line, "reason": e.reason} for e in catalog.errors))
    work = changes.work
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
        "items": items.num_rows,
        "to_fetch": 0 if nothing_changed else work,
        "unchanged": items.num_rows - work,
        "removed": changes.removed,
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
        log.info("%d items: %d unchanged (reused from %s), %d to fetch in %d shard(s)", items.num_rows, items.num_rows - work,
                 info["previous_version"], work, len(shards))
    return {**info, "shard_ids": list(range(len(shards)))}


main = cli.entry("snapshot", snapshot, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
