"""imagesearch.catalog_formats: one registry of catalog formats, and the docs' format table says what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.catalog import catalog_format, parse_catalog, serialize_catalog
from imagesearch.catalog_formats import FORMATS, CatalogFormat, format_of, markdown_table, suffixes_text, titles_text
from imagesearch.errors import CatalogError
from imagesearch.settings import PipelineSettings
from tasks.pipeline import PARAMS, STEP
from tests.imagesearch.test_catalog import ITEMS

ROOT = Path(__file__).resolve().parents[2]
TABLE_HEADER = "| format | suffixes |"


def docs_tables() -> dict[Path, str]:
    """Every format table (its header and the rows under it) in the README and docs/, by file."""
    found = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        lines = path.read_text().splitlines()
        for start, line in enumerate(lines):
            if line.startswith(TABLE_HEADER):
                end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
                found[path] = "\n".join(lines[start:end])
    return found


def test_the_docs_hold_the_registry_s_table_once() -> None:
    tables = docs_tables()
    assert len(tables) == 1, f"one format table in README.md or docs/, found in {sorted(map(str, tables))}"
    assert next(iter(tables.values())) == markdown_table()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda fmt: fmt.name)
def test_every_suffix_selects_its_format_and_rows_round_trip(fmt: CatalogFormat) -> None:
    for suffix in fmt.suffixes:
        assert catalog_format(f"gs://bucket/catalog{suffix.upper()}?v=1") == fmt.name
    catalog = parse_catalog(serialize_catalog(ITEMS, fmt.name), fmt.name)
    assert catalog.errors == [] and catalog.items == ITEMS


def test_messages_and_help_name_the_registry_s_formats() -> None:
    with pytest.raises(CatalogError, match=f"use {suffixes_text()}$"):
        catalog_format("catalog.xlsx")
    with pytest.raises(CatalogError, match="one of csv, jsonl, parquet"):
        format_of("xlsx")
    assert suffixes_text() == ".csv, .jsonl or .parquet" and titles_text() == "CSV, JSON Lines or Parquet"
    catalog_param = next(param for param in PARAMS if param.name == "catalog_uri")
    assert titles_text() in catalog_param.description
    assert suffixes_text() in PipelineSettings.model_fields["catalog_uri"].description  # type: ignore[operator]
    assert suffixes_text() in next(arg.help for arg in STEP["snapshot"].args if arg.flag == "--catalog")
