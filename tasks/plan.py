"""The run's work plan: which catalog items reuse their vector from the previous version, and the work shards of the
others (``snapshot/items.parquet`` and ``shards/<i>/items.jsonl``); ``snapshot`` writes it, ``build_index`` reads it.

The snapshot hash, computed over the plan's fields, names what a version is built from: the same hash and
model as the served version mean nothing changed.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagesearch.catalog import COLUMNS
from tasks.previous import PreviousVersion
from tasks.workspace import LAYOUT, Workspace

SNAPSHOT_FIELDS = (*COLUMNS, "image_stamp")
PLAN_FIELDS = ("item_id", "title", "category", "price", "on_sale", "image_uri", "updated_at", "image_stamp")
HASH_FORM = b"snapshot-columns-1"  # the hash's own form: bumped when the way the columns are hashed changes


def _column_digests(column: pa.ChunkedArray) -> tuple[bytes, bytes, bytes]:
    """(lengths, data, nulls) digests of a column, the same however it is cut into chunks."""
    lengths, data, nulls = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    for chunk in column.chunks:
        if chunk.null_count:
            nulls.update(np.asarray(chunk.is_null(), np.uint8).tobytes())
        if text:
            offsets_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(chunk.buffers()[1], offsets_type)[chunk.offset : chunk.offset + len(chunk) + 1]
            if len(offsets) > 1:
                lengths.update(np.diff(offsets).astype(np.int64).tobytes())
                data.update(memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        else:
            data.update(np.ascontiguousarray(chunk.to_numpy(zero_copy_only=False)).astype(_HASHED_DTYPE[chunk.type]).tobytes())
    return lengths.digest(), data.digest(), nulls.digest()


_HASHED_DTYPE = {pa.float64(): np.float64, pa.bool_(): np.uint8, pa.int64(): np.int64}


def snapshot_sha256(snapshot: pa.Table) -> str:
    """One hash of everything the version is built from: every item's fields and its image's change stamp, in order."""
    digest = hashlib.sha256(HASH_FORM)
    digest.update(str(snapshot.num_rows).encode())
    for name in SNAPSHOT_FIELDS:
        column = snapshot.column(name)
        digest.update(f"\n{name}:{column.type}\n".encode())
        for part in _column_digests(column):
            digest.update(part)
    return digest.hexdigest()


def plan_shards(count: int, shard_size: int, max_shards: int) -> list[tuple[int, int]]:
    """[start, end) ranges over ``count`` work items: about ``shard_size`` each, at most ``max_shards``; none for 0."""
    if count <= 0:
        return []
    shards = min(max_shards, math.ceil(count / shard_size))
    size = math.ceil(count / shards)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


@dataclass
class Changes:
    """Per item of the snapshot: its row in the previous version (-1 when new) and that row's image hash; and the
    row it reuses, which is that row when its image reference is unchanged, else -1."""

    previous_row: np.ndarray
    previous_sha256: pa.Array
    reuse: np.ndarray
    removed: int  # previous items no longer in the catalog

    @property
    def work(self) -> int:
        return int((self.reuse < 0).sum())


def classify(snapshot: pa.Table, previous: PreviousVersion | None) -> Changes:
    """Unchanged: the same item with the same image URI, the same updated_at and the same object stamp.

    Changed items still carry their previous row and image hash, so unchanged bytes are not re-embedded.
    """
    if previous is None:
        none = np.full(snapshot.num_rows, -1, np.int64)
        return Changes(none, pa.nulls(snapshot.num_rows, pa.string()), none, 0)
    old = previous.items
    rows = pc.index_in(snapshot.column("item_id"), value_set=old.column("item_id").combine_chunks())
    same = None
    for name in ("image_uri", "updated_at", "image_stamp"):
        equal = pc.equal(old.column(name).take(rows), snapshot.column(name))
        same = equal if same is None else pc.and_(same, equal)
    previous_row = np.asarray(pc.fill_null(rows, -1), np.int64)
    reuse = np.where(np.asarray(pc.fill_null(same, False), np.bool_), previous_row, -1)
    sha = old.column("image_sha256").take(rows).combine_chunks().cast(pa.string())
    removed = old.num_rows - int((previous_row >= 0).sum())
    return Changes(previous_row, sha, reuse, removed)


def write_plan(workspace: Workspace, snapshot: pa.Table, changes: Changes, shard_size: int,
               max_shards: int) -> list[tuple[int, int]]:
    """snapshot/items.parquet (every item, its reused row or -1) and one items.jsonl per work shard."""
    reused = pa.array(changes.reuse >= 0)
    table = snapshot.select(list(PLAN_FIELDS)).append_column("reuse_row", pa.array(changes.reuse, pa.int64()))
    table = table.append_column("image_sha256", pc.if_else(reused, changes.previous_sha256, pa.scalar(None, pa.string())))
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    del table
    workspace.store.put_bytes(LAYOUT.PLAN.key, buffer.getvalue().to_pybytes())
    del buffer
    work = pa.array(np.flatnonzero(changes.reuse < 0))
    shards = plan_shards(len(work), shard_size, max_shards)
    workspace.store.delete_prefix(LAYOUT.SHARD_ITEMS.top)
    if not shards:
        return shards
    fields = (*COLUMNS, "image_stamp")
    items = snapshot.select(list(fields)).take(work)
    items = items.append_column("previous_row", pa.array(changes.previous_row).take(work))
    items = items.append_column("previous_sha256", changes.previous_sha256.take(work))
    for shard, (start, end) in enumerate(shards):
        workspace.write_jsonl(LAYOUT.SHARD_ITEMS.of(shard), map(_work_record, items.slice(start, end - start).to_pylist()))
    return shards


def _work_record(record: dict[str, object]) -> dict[str, object]:
    """A work item as preprocess reads it: previous_row and previous_sha256 only for an item the previous version has."""
    if record["previous_row"] == -1:
        del record["previous_row"], record["previous_sha256"]
    return record


def read_plan(workspace: Workspace) -> pa.Table:
    """snapshot/items.parquet as :func:`write_plan` wrote it."""
    return pq.read_table(io.BytesIO(workspace.store.get_bytes(LAYOUT.PLAN.key)))
