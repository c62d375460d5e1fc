"""The catalog file formats, declared once (:data:`FORMATS`): each one's name, suffixes, reader and writer.

Errors, settings' help, the trigger form, the step's help and the docs' format table are made from (or tested
against) this registry. To add a format: write its reader (rows as ``(line, record or error)``) and writer, and add
one :class:`CatalogFormat`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagesearch.errors import CatalogError

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np
    import pyarrow as pa

    # A file read a column at a time: its catalog columns as the file has them and each row's line number; None when
    # the file is not in a form the column reader is sure of (the row reader then reads it, with its exact errors).
    Columns: TypeAlias = tuple[pa.Table, np.ndarray] | None

COLUMNS = ("item_id", "image_uri", "title", "category", "price", "on_sale", "updated_at")  # every row has them

Rows = Iterator[tuple[int, dict[str, Any] | str]]  # (line number, record or an error message) for every row
UTF8_BOM = b"\xef\xbb\xbf"
CSV_FIELD_LIMIT = 131_072  # csv.field_size_limit(): a longer field is a row error only the row reader gives


def _read_csv(data: bytes) -> Rows:
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    absent = [name for name in COLUMNS if name not in header]
    if absent:
        raise CatalogError(f"CSV header lacks column(s) {', '.join(absent)} (it has {len(header)} column(s))")
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over the size limit: this row is rejected, the reader goes on
            yield reader.line_num + 1, f"malformed CSV row: {exc}"  # the line that failed is not counted yet
            continue
        if None in record:
            yield reader.line_num, f"{len(record[None])} more field(s) than the header"  # type: ignore[index]
        else:
            yield reader.line_num, record


def _csv_columns(data: bytes) -> Columns:
    """A CSV whose every row is one line (no quoted line break, no lone CR, no blank line), read by Arrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    body = data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data
    if not body or b"\x00" in body or body.count(b"\r") != body.count(b"\r\n"):
        return None
    try:
        header = next(csv.reader([body.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(set(header)) != len(header) or any(name not in header for name in COLUMNS):
        return None
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    try:
        table = pcsv.read_csv(
            pa.py_buffer(body),
            read_options=pcsv.ReadOptions(use_threads=True, block_size=64 << 20),
            parse_options=pcsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != lines - 1:
        return None
    for name in header:
        if table.num_rows and pc.max(pc.binary_length(table.column(name))).as_py() > CSV_FIELD_LIMIT // 4:
            return None
    return table.select(list(COLUMNS)), np.arange(2, table.num_rows + 2, dtype=np.int64)


def _parquet_table(data: bytes) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise CatalogError(f"cannot read Parquet: {exc}") from None
    absent = [name for name in COLUMNS if name not in table.column_names]
    if absent:
        raise CatalogError(f"Parquet schema lacks column(s) {', '.join(absent)}")
    return table


def _parquet_columns(data: bytes) -> Columns:
    import numpy as np

    table = _parquet_table(data)
    return table.select(list(COLUMNS)), np.arange(2, table.num_rows + 2, dtype=np.int64)


def _read_jsonl(data: bytes) -> Rows:
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON: {exc.msg}"
            continue
        except RecursionError:
            yield number, "invalid JSON: nested too deep"
            continue
        except ValueError as exc:  # an integer of more than 4,300 digits
            yield number, f"invalid JSON: {exc}"
            continue
        yield (number, record) if isinstance(record, dict) else (number, "not a JSON object")


def _read_parquet(data: bytes) -> Rows:
    for number, record in enumerate(_parquet_table(data).to_pylist(), start=1):
        yield number + 1, record


def _write_csv(records: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode("utf-8")


def _write_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _write_parquet(records: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records) if records else pa.table({name: [] for name in COLUMNS})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@dataclass(frozen=True)
class CatalogFormat:
    """One catalog file format: its name, the suffixes that select it (the first one is its own), how its rows are
    read and written, and what a rejected row's line number counts."""

    name: str
    title: str
    suffixes: tuple[str, ...]
    read: Callable[[bytes], Rows]
    write: Callable[[list[dict[str, Any]]], bytes]
    lines: str
    read_columns: Callable[[bytes], Columns] | None = None  # the fast reader, where the format has one


# Every catalog format, declared once: errors, settings, the trigger form, step help and the docs' table name them.
FORMATS: tuple[CatalogFormat, ...] = (
    CatalogFormat("csv", "CSV", (".csv",), _read_csv, _write_csv, "the file's line, counting the header",
                  _csv_columns),
    CatalogFormat("jsonl", "JSON Lines", (".jsonl", ".ndjson", ".json"), _read_jsonl, _write_jsonl,
                  "the file's line (one object per line)"),
    CatalogFormat("parquet", "Parquet", (".parquet", ".pq"), _read_parquet, _write_parquet, "the row + 1",
                  _parquet_columns),
)
FORMAT = {fmt.name: fmt for fmt in FORMATS}


def _either(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]


def suffixes_text() -> str:
    """The formats' own suffixes for a message: ``.csv, .jsonl or .parquet``."""
    return _either([fmt.suffixes[0] for fmt in FORMATS])


def titles_text() -> str:
    """The formats' titles for a sentence: ``CSV, JSON Lines or Parquet``."""
    return _either([fmt.title for fmt in FORMATS])


def markdown_table() -> str:
    """The docs' format table, as the registry says it."""
    rows = [f"| {fmt.title} | {', '.join(f'`{suffix}`' for suffix in fmt.suffixes)} | {fmt.lines} |" for fmt in FORMATS]
    return "\n".join(["| format | suffixes | a rejected row's line is |", "|---|---|---|", *rows])


def format_of(name: str) -> CatalogFormat:
    if name not in FORMAT:
        raise CatalogError(f"unknown catalog format {name!r}: one of {', '.join(FORMAT)}")
    return FORMAT[name]
