"""tasks.plan: the shard ranges, the reuse decision per item, the plan files and the snapshot hash."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tasks.plan import PLAN_FIELDS, SNAPSHOT_FIELDS, classify, plan_shards, read_plan, snapshot_sha256, write_plan
from tasks.previous import CHANGE_COLUMNS, PreviousVersion
from tasks.workspace import LAYOUT, Workspace


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


def snapshot_of(records: list[dict[str, Any]]) -> pa.Table:
    schema = pa.schema([(name, pa.float64() if name == "price" else pa.bool_() if name == "on_sale" else pa.string())
                        for name in SNAPSHOT_FIELDS])
    return pa.Table.from_pylist(records, schema=schema)


def previous_of(records: list[dict[str, Any]], shas: list[str | None]) -> PreviousVersion:
    rows = [{**{name: row.get(name) for name in CHANGE_COLUMNS}, "image_sha256": sha} for row, sha in zip(records, shas,
                                                                                                         strict=True)]
    return PreviousVersion(None, pa.Table.from_pylist(rows, schema=pa.schema([(n, pa.string()) for n in CHANGE_COLUMNS])))  # type: ignore[arg-type]


def test_an_item_is_reused_only_when_uri_time_and_stamp_are_unchanged() -> None:
    previous = previous_of([record("a"), record("b"), record("c"), record("gone")], ["ha", "hb", "hc", "hg"])
    snapshot = snapshot_of([record("a"), record("b", image_stamp="s2"), record("c", updated_at="2026-02-01T00:00:00+00:00"),
                            record("d")])
    changes = classify(snapshot, previous)
    assert changes.reuse.tolist() == [0, -1, -1, -1] and changes.work == 3 and changes.removed == 1
    # A changed item still carries its previous row and hash: unchanged bytes are not embedded again.
    assert changes.previous_row.tolist() == [0, 1, 2, -1]
    assert changes.previous_sha256.to_pylist() == ["ha", "hb", "hc", None]
    none = classify(snapshot, None)
    assert none.reuse.tolist() == [-1] * 4 and none.removed == 0 and none.previous_sha256.null_count == 4


def test_a_version_without_stamps_reuses_nothing() -> None:
    previous = previous_of([{**record("a"), "image_stamp": None}], ["ha"])
    assert classify(snapshot_of([record("a")]), previous).reuse.tolist() == [-1]


def reference_classify(records: list[dict[str, Any]], previous: list[dict[str, Any]]) -> list[int]:
    """The per-row rule, as the contract states it (and as the code once ran it, one record at a time)."""
    row_of = {row["item_id"]: position for position, row in enumerate(previous)}
    reuse = []
    for item in records:
        row = row_of.get(item["item_id"], -1)
        if row >= 0:
            old = previous[row]
            item["previous_row"], item["previous_sha256"] = row, old["image_sha256"]
            if (old["image_uri"], old["updated_at"], old["image_stamp"]) != (item["image_uri"], item["updated_at"],
                                                                              item["image_stamp"]):
                row = -1
        reuse.append(row)
    return reuse


def random_corpus(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    previous = [{**record(f"id-{n}", image_stamp=rng.choice(["s1", "s2", None])), "image_sha256": f"h{n}"}
                for n in rng.sample(range(300), 200)]
    current = []
    for n in sorted(rng.sample(range(300), 220), key=str):
        changes = rng.choice([{}, {}, {"image_stamp": "s2"}, {"image_uri": "ü/é.png"},
                              {"updated_at": "2027-01-01T00:00:00+00:00"}])
        current.append(record(f"id-{n}", **changes))
    return current, previous


@pytest.mark.parametrize("seed", range(5))
def test_classify_and_the_plan_files_match_the_per_row_rule(tmp_path: Path, seed: int) -> None:
    current, old = random_corpus(seed)
    previous = previous_of(old, [row["image_sha256"] for row in old])
    snapshot = snapshot_of(current)
    changes = classify(snapshot, previous)
    expected = reference_classify(current, old)
    assert changes.reuse.tolist() == expected
    assert changes.removed == len({row["item_id"] for row in old} - {row["item_id"] for row in current})

    workspace = Workspace(str(tmp_path / "run"))
    shards = write_plan(workspace, snapshot, changes, shard_size=40, max_shards=4)
    plan = read_plan(workspace).to_pylist()
    assert plan == [{**{name: item[name] for name in PLAN_FIELDS}, "reuse_row": row,
                     "image_sha256": old[row]["image_sha256"] if row >= 0 else None}
                    for item, row in zip(current, expected, strict=True)]
    work = [item for item, row in zip(current, expected, strict=True) if row < 0]
    written = [workspace.read_jsonl(LAYOUT.SHARD_ITEMS.of(shard)) for shard in range(len(shards))]
    assert [item for shard in written for item in shard] == work  # the same keys, in the same order
    text = workspace.store.get_bytes(LAYOUT.SHARD_ITEMS.of(0)).decode()
    assert text.splitlines()[0] == json.dumps(work[0], ensure_ascii=False)


def test_the_snapshot_hash_names_every_field_and_the_order() -> None:
    first, second = record("a"), record("b")
    assert snapshot_sha256(snapshot_of([first, second])) == snapshot_sha256(snapshot_of([dict(first), dict(second)]))
    assert snapshot_sha256(snapshot_of([first, second])) != snapshot_sha256(snapshot_of([second, first]))
    changed = {"price": 2.0, "on_sale": True}
    for name in SNAPSHOT_FIELDS:
        other = snapshot_of([{**first, name: changed.get(name, "other")}])
        assert snapshot_sha256(other) != snapshot_sha256(snapshot_of([first])), name
    # Text moved from one field's end to the next one's start is another snapshot.
    assert snapshot_sha256(snapshot_of([record("a", title="tc", category="")])) != snapshot_sha256(snapshot_of([first]))


def test_the_snapshot_hash_is_the_same_however_the_columns_are_chunked() -> None:
    records = [record(f"id-{n}", title="é" * n) for n in range(50)]
    whole = snapshot_of(records)
    chunked = pa.concat_tables([snapshot_of(records[:7]), snapshot_of(records[7:31]), snapshot_of(records[31:])])
    sliced = pa.concat_tables([snapshot_of(records[:3]), snapshot_of(records)]).slice(3)
    assert snapshot_sha256(whole) == snapshot_sha256(chunked) == snapshot_sha256(sliced)
    assert snapshot_sha256(whole) != snapshot_sha256(whole.slice(1))
