"""tasks.plan: the shard ranges, the reuse decision per item, and the snapshot hash."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.plan import SNAPSHOT_FIELDS, classify, plan_shards, snapshot_sha256
from tasks.previous import PreviousVersion


@pytest.mark.parametrize(("count", "size", "most"), [(0, 10, 4), (1, 10, 4), (10, 10, 4), (11, 10, 4), (95, 10, 4),
                                                     (10_000, 5000, 32), (1_000_000, 5000, 32), (7, 1, 3)])
def test_the_shard_plan_covers_every_changed_item_exactly_once(count: int, size: int, most: int) -> None:
    shards = plan_shards(count, size, most)
    covered = [position for start, end in shards for position in range(start, end)]
    assert covered == list(range(count))
    assert len(shards) <= most and all(end > start for start, end in shards)
    if count and count <= size * most:
        assert max(end - start for start, end in shards) <= size


def record(item_id: str, **changes: Any) -> dict[str, Any]:
    return {"item_id": item_id, "image_uri": f"{item_id}.png", "title": "t", "category": "c", "price": 1.0,
            "on_sale": False, "updated_at": "2026-01-01T00:00:00+00:00", "image_stamp": "s1", **changes}


def test_an_item_is_reused_only_when_uri_time_and_stamp_are_unchanged() -> None:
    old = [record("a"), record("b"), record("c")]
    items = {name: [row[name] for row in old] for name in ("item_id", "image_uri", "updated_at", "image_stamp")}
    previous = PreviousVersion(None, {**items, "image_sha256": ["ha", "hb", "hc"]}, {"a": 0, "b": 1, "c": 2})  # type: ignore[arg-type]
    records = [record("a"), record("b", image_stamp="s2"), record("c", updated_at="2026-02-01T00:00:00+00:00"),
               record("d")]
    assert classify(records, previous) == [0, -1, -1, -1]
    # A changed item still carries its previous row and hash: unchanged bytes are not embedded again.
    assert (records[1]["previous_row"], records[1]["previous_sha256"]) == (1, "hb") and "previous_row" not in records[3]
    assert classify([record("a")], None) == [-1]


def test_the_snapshot_hash_names_every_field_and_the_order() -> None:
    first, second = record("a"), record("b")
    assert snapshot_sha256([first, second]) == snapshot_sha256([dict(first), dict(second)])
    assert snapshot_sha256([first, second]) != snapshot_sha256([second, first])
    for name in SNAPSHOT_FIELDS:
        assert snapshot_sha256([{**first, name: "other"}]) != snapshot_sha256([first]), name
