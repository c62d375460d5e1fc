"""The server's items as Arrow columns: a row's values, an id's row, a column's distinct values and labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from imagesearch.item_table import ItemTable


def table() -> ItemTable:
    return ItemTable(pa.concat_tables([  # two chunks, as a Parquet file of several row groups reads
        pa.table({"item_id": ["b", "a", "d"], "category": ["pets", "art", "pets"], "price": [1.5, 2.0, None]}),
        pa.table({"item_id": ["c", None], "category": ["art", "space"], "price": [3.0, 4.0]}),
    ]))


def test_a_rows_values_are_python_values() -> None:
    items = table()
    assert len(items) == 5 and len(items["category"]) == 5
    assert [items["item_id"][row] for row in range(5)] == ["b", "a", "d", "c", None]
    assert items["price"][1] == 2.0 and items["price"][2] is None and items["category"][-1] == "space"
    assert items["item_id"][1:3] == ["a", "d"]
    with pytest.raises(IndexError, match="row 5 is not in a column of 5"):
        items["item_id"][5]


def test_every_id_finds_its_row_and_nothing_else_finds_one() -> None:
    rows = table().rows
    assert {item_id: rows[item_id] for item_id in ("a", "b", "c", "d")} == {"a": 1, "b": 0, "c": 3, "d": 2}
    assert len(rows) == 4 and sorted(rows) == ["a", "b", "c", "d"]
    for missing in ("", "aa", "e", "B", None, 3):
        assert rows.get(missing) is None  # type: ignore[arg-type]
        assert missing not in rows


def test_distinct_values_labels_and_numbers() -> None:
    items = table()
    assert items.distinct("category") == ["art", "pets", "space"]
    labels = items.labels("category")
    assert labels.dtype == object and labels.tolist() == ["pets", "art", "pets", "art", "space"]
    assert labels[0] is labels[2]  # each distinct value held once
    prices = items.numbers("price", np.float64)
    assert prices.dtype == np.float64 and prices[0] == 1.5 and np.isnan(prices[2])


def test_a_large_table_finds_ids_by_binary_search() -> None:
    ids = [f"item-{n:07d}" for n in np.random.default_rng(0).permutation(100_000)]
    items = ItemTable(pa.table({"item_id": ids}))
    for row in (0, 17, 99_999):
        assert items.rows[ids[row]] == row
