from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagesearch.catalog import CatalogItem, parse_catalog, read_catalog, serialize_catalog
from imagesearch.catalog_formats import FORMATS, CatalogFormat
from imagesearch.errors import CatalogError
from tests.conftest import catalog_policy

ITEMS = [
    CatalogItem("a1", "img/a1.png", "Red mug, 300 ml", "kitchen", 9.99, True, datetime(2026, 1, 1, tzinfo=UTC)),
    CatalogItem("b2", "gs://bucket/b2.jpg", 'Chair "Oslo"', "furniture", 120.0, False, datetime(2026, 2, 3, 4, 5, tzinfo=UTC)),
    CatalogItem("c3", "https://example.invalid/c3.webp", "Lamp", "lighting", 0.0, False, datetime(2026, 3, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.name)
def test_each_format_round_trips(tmp_path: Path, fmt: CatalogFormat) -> None:
    path = tmp_path / f"catalog{fmt.suffixes[0]}"
    path.write_bytes(serialize_catalog(ITEMS, fmt.name))
    catalog = read_catalog(str(path), catalog_policy())
    assert catalog.errors == []
    assert catalog.items[0].image_uri == str(tmp_path / "img" / "a1.png")  # relative to the catalog
    assert catalog.items[1:] == ITEMS[1:]


def test_file_uri_is_read(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(serialize_catalog(ITEMS, "csv"))
    assert len(read_catalog(f"file://{path}", catalog_policy()).items) == 3


def test_bad_csv_rows_are_reported_with_line_numbers() -> None:
    text = (
        "item_id,image_uri,title,category,price,on_sale,updated_at\n"
        "ok,a.png,A,cat,1.5,true,2026-01-01T00:00:00Z\n"
        "no-price,b.png,B,cat,,false,2026-01-01T00:00:00Z\n"
        "bad-price,c.png,C,cat,cheap,false,2026-01-01T00:00:00Z\n"
        "bad-bool,d.png,D,cat,1,maybe,2026-01-01T00:00:00Z\n"
        "bad-time,e.png,E,cat,1,true,yesterday\n"
        "neg,f.png,F,cat,-3,true,2026-01-01\n"
        "extra,g.png,G,cat,1,true,2026-01-01,surplus\n"
    )
    catalog = parse_catalog(text.encode(), "csv")
    assert [item.item_id for item in catalog.items] == ["ok"]
    assert [(error.line, error.reason.split()[0]) for error in catalog.errors] == [
        (3, "missing"), (4, "price"), (5, "on_sale"), (6, "updated_at"), (7, "price"), (8, "1"),
    ]
    assert "cheap" in str(catalog.errors[1]) and str(catalog.errors[1]).startswith("line 4:")


def test_bad_jsonl_rows_are_reported_with_line_numbers() -> None:
    good = '{"item_id":"x","image_uri":"x.png","title":"X","category":"c","price":2,"on_sale":false,"updated_at":"2026-01-01"}'
    text = f"{good}\n{{not json\n[1,2]\n\n" + good.replace('"price":2', '"price":"NaN"')
    catalog = parse_catalog(text.encode(), "jsonl")
    assert len(catalog.items) == 1
    assert [(e.line, e.reason.split(":")[0].split()[0]) for e in catalog.errors] == [(2, "invalid"), (3, "not"), (5, "price")]


def test_unreadable_catalogs_raise_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="unknown catalog format"):
        read_catalog(str(tmp_path / "catalog.xlsx"), catalog_policy())
    with pytest.raises(CatalogError, match="cannot read catalog"):
        read_catalog(str(tmp_path / "missing.csv"), catalog_policy())
    (tmp_path / "headerless.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CatalogError, match="lacks column"):
        read_catalog(str(tmp_path / "headerless.csv"), catalog_policy())
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(CatalogError, match="Parquet"):
        read_catalog(str(tmp_path / "broken.parquet"), catalog_policy())
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CatalogError, match="UTF-8"):
        read_catalog(str(tmp_path / "binary.csv"), catalog_policy())


GOOD_JSON = '{"item_id": "%s", "image_uri": "a.png", "title": "t", "category": "c", "price": 1, "on_sale": true, ' \
    '"updated_at": "2026-01-01T00:00:00Z"}'
MALFORMED_JSON_ROWS = {
    "nested too deep": '{"item_id": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "Exceeds the limit": GOOD_JSON.replace('"price": 1', '"price": ' + "9" * 5_000) % "big-int",
    "is not a number": GOOD_JSON.replace('"price": 1', '"price": ' + "9" * 400) % "overflowing-int",
}


@pytest.mark.parametrize("reason", list(MALFORMED_JSON_ROWS))
def test_a_malformed_json_row_is_a_rejected_row(reason: str) -> None:
    data = "\n".join([GOOD_JSON % "before", MALFORMED_JSON_ROWS[reason], GOOD_JSON % "after"]).encode()
    catalog = parse_catalog(data, "jsonl")
    assert [item.item_id for item in catalog.items] == ["before", "after"]
    assert len(catalog.errors) == 1 and catalog.errors[0].line == 2 and reason in catalog.errors[0].reason


def test_a_huge_csv_field_is_a_rejected_row() -> None:
    header = "item_id,image_uri,title,category,price,on_sale,updated_at\n"
    data = header + "a,a.png,t,c,1,true,2026-01-01\n" + "b,b.png," + "t" * 200_000 + ",c,1,true,2026-01-01\n" \
        + "c,c.png,t,c,1,true,2026-01-01\n"
    catalog = parse_catalog(data.encode(), "csv")
    assert [item.item_id for item in catalog.items] == ["a", "c"]
    assert [(error.line, error.reason) for error in catalog.errors] == [
        (3, "malformed CSV row: field larger than field limit (131072)")]
