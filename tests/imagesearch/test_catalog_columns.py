"""The column reader validates a catalog exactly as the row reader does: the same items, the same rejected rows with
the same reasons and lines, on a hostile corpus (duplicates, bad values, Unicode, URIs of every scheme)."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagesearch import catalog as catalog_module
from imagesearch.catalog import Catalog, parse_catalog
from imagesearch.catalog_columns import plain_items
from imagesearch.catalog_formats import COLUMNS, CatalogFormat, format_of

BASE = "/srv/catalogs/today.csv"
POOLS: dict[str, list[Any]] = {
    "item_id": ["a1", "a1", "b2", "ü-3", "日本-4", "x/y", " padded ", "\u3000wide", "tab\t", "", "z" * 256, "z" * 257,
                "é" * 256, "é" * 257, "emoji-😀", "nul\x00id", "dup", "dup", "dup"],
    "image_uri": ["img/a.png", "/abs/a.png", "file:///abs/b.png", "gs://bucket/c.jpg", "https://example.com/d.webp",
                  "http://example.com/e.png", "ftp://example.com/f.png", "data:image/png;base64,AAAA", "../up.png",
                  "~/home.png", "C:/win.png", "//host/share.png", "https://[::1/broken", "img/ü ñ.png", " sp.png", ""],
    "title": ["Red mug, 300 ml", 'Chair "Oslo"', "😀 emoji", "trailing\x85", "\u2028sep", "", "   ", "ok"],
    "category": ["kitchen", "furniture", "キッチン", " c ", ""],
    "price": ["9.99", "0", "0.0", "120", "1e5", "1_000", " 12 ", ".5", "1.", "-1", "-0", "NaN", "inf", "1e400",
              "cheap", "", "123456789012345.123456789012345", "0.30000000000000004", "007"],
    "on_sale": ["true", "false", "True", "FALSE", "1", "0", "yes", "No", "y", "t", "F", " true", "maybe", ""],
    "updated_at": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00", "2026-01-01",
                   "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.123456Z", "2026-01-01T00:00:00.123Z",
                   "2026-01-01T02:00:00+02:00", "2026-02-30T00:00:00Z", "2024-02-29T12:00:00Z", "2026-01-01T23:59:60Z",
                   "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "yesterday", "",
                   "2026-01-01 00:00:00", "2026-01-01T00:00:00z", " 2026-01-01T00:00:00Z"],
}


def hostile_rows(seed: int, count: int = 600) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        row = {name: rng.choice(values) if rng.random() < 0.3 else values[0] for name, values in POOLS.items()}
        if rng.random() < 0.3:
            row["price"] = repr(round(rng.uniform(0, 10_000), rng.randint(0, 12)))
        if rng.random() < 0.3:
            row["item_id"] = f"id-{rng.randint(0, count // 2)}"  # duplicates, some newer than others
            row["updated_at"] = f"2026-01-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        rows.append(row)
    return [row for row in rows if "\x00" not in row["item_id"]]  # a NUL is no CSV's (the row reader refuses it)


def csv_bytes(rows: list[dict[str, Any]], header: tuple[str, ...] = COLUMNS) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def by_rows(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch, base_uri: str = BASE) -> Catalog:
    """The catalog as the row reader alone reads it (every row through parse_row)."""
    with monkeypatch.context() as patch:
        def rows_only(name: str) -> CatalogFormat:
            return dataclasses.replace(format_of(name), read_columns=None)
        patch.setattr(catalog_module, "format_of", rows_only)
        return parse_catalog(data, fmt, base_uri=base_uri)


def assert_same(data: bytes, fmt: str, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    fast, slow = parse_catalog(data, fmt, base_uri=BASE), by_rows(data, fmt, monkeypatch)
    assert fast.table.schema == slow.table.schema
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.errors == slow.errors
    assert fast.items == slow.items
    return fast


@pytest.mark.parametrize("seed", range(4))
def test_a_hostile_csv_reads_the_same_by_columns(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = csv_bytes(hostile_rows(seed))
    assert format_of("csv").read_columns(data) is not None  # read by columns, not handed whole to the row reader
    catalog = assert_same(data, "csv", monkeypatch)
    assert catalog.errors and catalog.table.num_rows > 100  # both kinds of row are in the corpus


@pytest.mark.parametrize("seed", range(2))
def test_a_hostile_parquet_reads_the_same_by_columns(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = hostile_rows(seed)
    assert_same(parquet_bytes(pa.Table.from_pylist(rows)), "parquet", monkeypatch)
    rng = random.Random(seed)
    typed = pa.table({
        "item_id": [row["item_id"] for row in rows], "image_uri": [row["image_uri"] for row in rows],
        "title": [row["title"] for row in rows], "category": [row["category"] for row in rows],
        "price": pa.array([rng.choice([rng.uniform(0, 99), -1.0, float("nan"), float("inf"), None, 0.0, -0.0])
                           for _ in rows], pa.float64()),
        "on_sale": pa.array([rng.choice([True, False, None]) for _ in rows], pa.bool_()),
        "updated_at": [row["updated_at"] for row in rows], "extra": list(range(len(rows))),
    })
    assert_same(parquet_bytes(typed), "parquet", monkeypatch)
    as_ints = typed.set_column(4, "price", pa.array([rng.randint(-5, 2**62) for _ in rows], pa.int64()))
    assert_same(parquet_bytes(as_ints.set_column(0, "item_id", pa.array(range(len(rows))))), "parquet", monkeypatch)


GOOD = "ok,a.png,A,cat,1.5,true,2026-01-01T00:00:00Z\n"
HEADER = ",".join(COLUMNS) + "\n"


@pytest.mark.parametrize("text", [
    HEADER + GOOD + 'nl,b.png,"two\nlines",cat,1,true,2026-01-01T00:00:00Z\n' + GOOD,  # a quoted line break
    HEADER + GOOD + "\n" + GOOD,  # a blank line
    HEADER + GOOD.replace("\n", "\r") + GOOD,  # a lone CR ends a line
    HEADER.replace("\n", "\r\n") + GOOD.replace("\n", "\r\n"),
    "\ufeff" + HEADER + GOOD,  # a byte order mark
    HEADER + GOOD + "extra,g.png,G,cat,1,true,2026-01-01,surplus\n" + "short,h.png\n",
    HEADER + 'q,"a,b.png","say ""hi""",c,1,true,2026-01-01T00:00:00Z\n' + 'mid,ab"c,"q"z,c,1,true,2026-01-01T00:00:00Z\n',
    HEADER + GOOD + "big," + "x" * 200_000 + ",T,c,1,true,2026-01-01T00:00:00Z\n",  # over csv's field size limit
    '"item_id",image_uri,title,category,price,on_sale,updated_at\n' + GOOD,
    "item_id,image_uri,title,category,price,on_sale,updated_at,title\n" + GOOD.replace("\n", ",again\n"),
    HEADER + GOOD.rstrip("\n"),  # no final line break
    HEADER,
])
def test_csv_forms_the_column_reader_is_unsure_of_read_as_rows_do(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(text.encode(), "csv", monkeypatch)


def test_the_line_of_a_rejected_row_is_the_files() -> None:
    catalog = parse_catalog((HEADER + GOOD + GOOD.replace("1.5", "cheap") + GOOD.replace("true", "maybe")).encode(), "csv")
    assert [str(error) for error in catalog.errors] == ["line 3: price 'cheap' is not a number",
                                                        "line 4: on_sale 'maybe' is not a boolean"]


def test_plain_rows_skip_the_row_reader() -> None:
    raw = pa.table({"item_id": ["a", " a"], "image_uri": ["/x.png", "/x.png"], "title": ["t", "t"], "category": ["c", "c"],
                    "price": ["1.25", "1.25"], "on_sale": ["true", "yes"], "updated_at": ["2026-01-01T00:00:00Z"] * 2})
    values, plain = plain_items(raw)
    assert plain.tolist() == [True, False]
    assert values.slice(0, 1).to_pylist() == [{"item_id": "a", "image_uri": "/x.png", "title": "t", "category": "c",
                                               "price": 1.25, "on_sale": True, "updated_at": "2026-01-01T00:00:00+00:00",
                                               "updated_us": 1_767_225_600_000_000}]


def test_a_million_plain_rows_are_validated_without_the_row_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(record: dict[str, Any]) -> None:
        raise AssertionError("a plain row went through parse_row")
    monkeypatch.setattr(catalog_module, "parse_row", refuse)
    count = 1_000_000
    ids = pa.array(np.char.add("item-", np.arange(count).astype(str)))
    table = pa.table({"item_id": ids, "image_uri": pa.compute.binary_join_element_wise("/img/", ids, ".png", ""),
                      "title": pa.repeat("listing", count), "category": pa.repeat("shoes", count),
                      "price": pa.array(np.arange(count) % 200 + 0.5), "on_sale": pa.array(np.arange(count) % 7 == 0),
                      "updated_at": pa.repeat("2026-01-01T00:00:00Z", count)})
    catalog = parse_catalog(parquet_bytes(table), "parquet")
    assert catalog.table.num_rows == count and catalog.errors == []
    assert catalog.table.column("updated_at")[5].as_py() == "2026-01-01T00:00:00+00:00"
