"""The version's items and vectors, assembled from the run's plan and shards: per item, its vector is a row of the
previous version (reused) or a row of this run's new vectors; an item whose image failed in preprocess is left out.
Items keep the snapshot's order (by item id); an updated index reorders them into its rows (:mod:`tasks.index_update`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from imagesearch.index_store import CHUNK_ROWS, ITEM_COLUMNS, ITEMS_SCHEMA, STORED_DTYPE, StoredVectors
from tasks.cli import StepFailed
from tasks.plan import SNAPSHOT_FIELDS, read_plan, snapshot_sha256
from tasks.workspace import LAYOUT, Workspace


@dataclass
class Assembly:
    """The version's items and, per item, where its vector comes from: a row of the previous version or a row
    of this run's new vectors (the other one is -1)."""

    items: pa.Table
    previous_rows: np.ndarray
    fresh_rows: np.ndarray
    fresh: np.ndarray
    model: dict[str, Any] | None
    snapshot_sha256: str


def gather_shards(workspace: Workspace, shards: int) -> tuple[dict[str, tuple[str, int, int]], dict[str, str], np.ndarray,
                                                               dict[str, Any] | None]:
    """item_id -> (image sha256, previous row, fresh row) of every preprocessed item; item_id -> the image stamp
    preprocess saw (failed items too); the new vectors; the model."""
    outcomes: dict[str, tuple[str, int, int]] = {}
    stamps: dict[str, str] = {}
    vectors: list[np.ndarray] = []
    models: dict[str, dict[str, Any]] = {}
    fresh = 0
    for shard in range(shards):
        records = workspace.read_jsonl(LAYOUT.PREPROCESSED.of(shard))
        shard_vectors = workspace.read_array(LAYOUT.EMBEDDINGS.of(shard))
        model = workspace.read_json(LAYOUT.MODEL.of(shard))
        models[model["model_id"]] = model
        embedded = sum(record["status"] == "embed" for record in records)
        if embedded != len(shard_vectors):
            raise StepFailed(f"shard {shard}: {embedded} images to embed but {len(shard_vectors)} vectors")
        stamps.update(workspace.read_json(LAYOUT.FAILED_STAMPS.of(shard)))
        stamps.update((record["item_id"], record["image_stamp"]) for record in records)
        for record in records:
            if record["status"] == "embed":
                outcomes[record["item_id"]] = (record["image_sha256"], -1, fresh)
                fresh += 1
            else:  # the same bytes as in the previous version
                outcomes[record["item_id"]] = (record["image_sha256"], record["reuse_row"], -1)
        vectors.append(shard_vectors)
    if len(models) > 1:
        raise StepFailed(f"shards were embedded with different models: {sorted(models)}")
    fresh_vectors = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    return outcomes, stamps, fresh_vectors, (models.popitem()[1] if models else None)


def assemble(workspace: Workspace, info: dict[str, Any]) -> Assembly:
    plan = read_plan(workspace)
    outcomes, stamps, fresh, model = gather_shards(workspace, info["shards"])
    ids = plan.column("item_id").to_pylist()
    if stamps:
        seen = [stamps.get(item_id, stamp) for item_id, stamp in zip(ids, plan.column("image_stamp").to_pylist(), strict=True)]
        plan = plan.set_column(plan.schema.get_field_index("image_stamp"), "image_stamp", pa.array(seen, pa.string()))
    reuse = plan.column("reuse_row").to_numpy()
    shas = plan.column("image_sha256").to_pylist()
    keep, previous_rows, fresh_rows = [], [], []
    for position, item_id in enumerate(ids):
        if reuse[position] >= 0:
            keep.append(position)
            previous_rows.append(int(reuse[position]))
            fresh_rows.append(-1)
        elif item_id in outcomes:  # an item preprocess fetched (one that failed there is left out)
            shas[position], previous_row, fresh_row = outcomes[item_id]
            keep.append(position)
            previous_rows.append(previous_row)
            fresh_rows.append(fresh_row)
    items = plan.set_column(plan.schema.get_field_index("image_sha256"), "image_sha256", pa.array(shas, pa.string()))
    items = items.take(pa.array(keep, pa.int64())).select(list(ITEM_COLUMNS)).cast(ITEMS_SCHEMA)
    # The snapshot as built: every catalog item (failed ones too) with the stamp its image had when fetched.
    snapshot_hash = snapshot_sha256(plan.select(list(SNAPSHOT_FIELDS)))
    return Assembly(items, np.asarray(previous_rows, np.int64), np.asarray(fresh_rows, np.int64), fresh, model,
                    snapshot_hash)


def vector_chunks(assembly: Assembly, previous: StoredVectors | None, dim: int) -> Iterator[np.ndarray]:
    """The kept items' raw vectors in order, in the stored dtype, CHUNK_ROWS at a time (previous rows ascend: one
    sequential pass; reused rows are copied as stored, never converted)."""
    for start in range(0, len(assembly.previous_rows), CHUNK_ROWS):
        old = assembly.previous_rows[start : start + CHUNK_ROWS]
        new = assembly.fresh_rows[start : start + CHUNK_ROWS]
        chunk = np.empty((len(old), dim), STORED_DTYPE)
        reused = old >= 0
        if reused.any():
            rows = old[reused]
            order = np.argsort(rows, kind="stable")
            values = np.empty((len(rows), dim), STORED_DTYPE)
            values[order] = previous.take(rows[order], STORED_DTYPE)  # type: ignore[union-attr]
            chunk[reused] = values
        if not reused.all():
            chunk[~reused] = assembly.fresh[new[~reused]]
        yield chunk
