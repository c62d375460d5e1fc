"""The catalog snapshot schema and its readers/writers (CSV, JSON Lines, Parquet)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from imagesearch import uri as uris
from imagesearch import uri_reader
from imagesearch.errors import CatalogError, CatalogUnavailableError, ImageFetchError, InputRefusedError, is_transient
from imagesearch.input_policy import InputPolicy

COLUMNS = ("item_id", "image_uri", "title", "category", "price", "on_sale", "updated_at")
MAX_CATALOG_BYTES = 2 * 1024**3
CATALOG_DEADLINE_S = 600.0
SHOWN_CHARS = 40


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    image_uri: str
    title: str
    category: str
    price: float
    on_sale: bool
    updated_at: datetime

    def to_record(self) -> dict[str, Any]:
        return {**vars(self), "updated_at": self.updated_at.isoformat()}  # not asdict: it deep-copies every field


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line in the file (CSV: counting the header; JSONL: the line; Parquet: row + 1)
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class Catalog:
    items: list[CatalogItem]
    errors: list[RowError]


def catalog_format(uri: str) -> str:
    """The format from the suffix of the URI's parsed path (never its query or fragment)."""
    try:
        local = uris.local_path(uri)
        path = local.as_posix() if local is not None else urlparse(uri).path
    except ValueError as exc:
        raise CatalogError(f"malformed catalog URI {uri!r}: {exc}") from None
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    aliases = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "parquet": "parquet", "pq": "parquet"}
    if suffix not in aliases:
        raise CatalogError(f"unknown catalog format {suffix!r} for {uri}: use .csv, .jsonl or .parquet")
    return aliases[suffix]


def _shown(value: Any) -> str:
    """A rejected value, clipped: a row error names what is wrong without copying the file into logs."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more than 4,300 digits, a structure nested too deep
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def parse_row(record: dict[str, Any]) -> CatalogItem:
    """One raw record -> a validated item; ValueError says what is wrong."""
    missing = [name for name in COLUMNS if record.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    item_id = str(record["item_id"]).strip()
    if not item_id or "/" in item_id or len(item_id) > 256:
        raise ValueError(f"invalid item_id {_shown(item_id)}")
    try:
        price = float(record["price"])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"price {_shown(record['price'])} is not a number") from None
    if not math.isfinite(price) or price < 0:
        raise ValueError(f"price {price} must be a finite non-negative number")
    return CatalogItem(
        item_id=item_id,
        image_uri=str(record["image_uri"]).strip(),
        title=str(record["title"]).strip(),
        category=str(record["category"]).strip(),
        price=price,
        on_sale=_parse_bool(record["on_sale"]),
        updated_at=_parse_time(record["updated_at"]),
    )


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "t"):
        return True
    if text in ("false", "0", "no", "n", "f"):
        return False
    raise ValueError(f"on_sale {_shown(value)} is not a boolean")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"updated_at {_shown(value)} is not an ISO-8601 timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _records(data: bytes, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record or an error message) for every row of the file."""
    if fmt == "csv":
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
    elif fmt == "jsonl":
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
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise CatalogError(f"cannot read Parquet: {exc}") from None
        absent = [name for name in COLUMNS if name not in table.column_names]
        if absent:
            raise CatalogError(f"Parquet schema lacks column(s) {', '.join(absent)}")
        for number, record in enumerate(table.to_pylist(), start=1):
            yield number + 1, record


def parse_catalog(data: bytes, fmt: str, base_uri: str = "") -> Catalog:
    items: list[CatalogItem] = []
    errors: list[RowError] = []
    try:
        for line, record in _records(data, fmt):
            if isinstance(record, str):
                errors.append(RowError(line, record))
                continue
            try:
                item = parse_row(record)
            except ValueError as exc:
                errors.append(RowError(line, str(exc)))
                continue
            except RecursionError:  # a field nested just under the parser's limit, too deep to turn into text
                errors.append(RowError(line, "a field is nested too deep"))
                continue
            if base_uri:
                item = _with_uri(item, uris.resolve(item.image_uri, base_uri))
            items.append(item)
    except UnicodeDecodeError as exc:
        raise CatalogError(f"catalog is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise CatalogError(f"malformed CSV: {exc}") from None
    return Catalog(items, errors)


def _with_uri(item: CatalogItem, image_uri: str) -> CatalogItem:
    return CatalogItem(**{**vars(item), "image_uri": image_uri})


def read_catalog(uri: str, policy: InputPolicy) -> Catalog:
    """Read and validate a catalog ``policy`` allows (``InputPolicy.for_catalogs(settings)``); relative image
    URIs are resolved against the catalog's location."""
    fmt = catalog_format(uri)
    policy = replace(policy, deadline_s=CATALOG_DEADLINE_S)
    try:
        data = uri_reader.read_bytes(uri, policy, max_bytes=MAX_CATALOG_BYTES)
    except InputRefusedError as exc:
        raise CatalogError(f"catalog {uri} is refused by the input policy: {exc}") from None
    except ImageFetchError as exc:  # a timeout or an unavailable store may pass; a 4xx or a bad file will not
        error = CatalogUnavailableError if is_transient(exc) else CatalogError
        raise error(f"cannot read catalog {uri}: {exc}") from None
    return parse_catalog(data, fmt, base_uri=uri)


def serialize_catalog(items: Iterable[CatalogItem], fmt: str) -> bytes:
    records = [item.to_record() for item in items]
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue().encode("utf-8")
    if fmt == "jsonl":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(records) if records else pa.table({name: [] for name in COLUMNS})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    raise CatalogError(f"unknown catalog format {fmt!r}")
