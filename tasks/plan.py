"""The run's work plan: which catalog items reuse their vector from the previous version, and the work shards of the
others (``snapshot/items.parquet`` and ``shards/<i>/items.jsonl``); ``snapshot`` writes it, ``build_index`` reads it.

The snapshot hash, computed over the plan's fields, names what a version is built from: the same hash and
model as the served version mean nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch.catalog import COLUMNS
from tasks.previous import PreviousVersion
from tasks.workspace import LAYOUT, Workspace

SNAPSHOT_FIELDS = (*COLUMNS, "image_stamp")
PLAN_FIELDS = ("item_id", "title", "category", "price", "on_sale", "image_uri", "updated_at", "image_stamp")


def snapshot_sha256(records: list[dict[str, Any]]) -> str:
    """One hash of everything the version is built from: every item's fields and its image's change stamp."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record[name] for name in SNAPSHOT_FIELDS], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def plan_shards(count: int, shard_size: int, max_shards: int) -> list[tuple[int, int]]:
    """[start, end) ranges over ``count`` work items: about ``shard_size`` each, at most ``max_shards``; none for 0."""
    if count <= 0:
        return []
    shards = min(max_shards, math.ceil(count / shard_size))
    size = math.ceil(count / shards)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


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


def read_plan(workspace: Workspace) -> pa.Table:
    """snapshot/items.parquet as :func:`write_plan` wrote it."""
    return pq.read_table(io.BytesIO(workspace.store.get_bytes(LAYOUT.PLAN.key)))
