"""The catalog snapshot: its rows validated into items, read in any of the formats of
:mod:`imagesearch.catalog_formats` (which says how to add one)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagesearch import uri as uris
from imagesearch import uri_reader
from imagesearch.catalog_columns import plain_items
from imagesearch.catalog_formats import COLUMNS, FORMATS, format_of, suffixes_text
from imagesearch.errors import CatalogError, CatalogUnavailableError, ImageFetchError, InputRefusedError, is_transient
from imagesearch.input_policy import InputPolicy

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
    line: int  # 1-based, as the format counts it (CatalogFormat.lines)
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


# The validated items as a table: the catalog's columns as parse_row makes them (updated_at as its isoformat text) and
# updated_us, the instant in microseconds since the epoch (what deduplication compares).
ITEMS_SCHEMA = pa.schema([("item_id", pa.string()), ("image_uri", pa.string()), ("title", pa.string()),
                          ("category", pa.string()), ("price", pa.float64()), ("on_sale", pa.bool_()),
                          ("updated_at", pa.string()), ("updated_us", pa.int64())])


@dataclass
class Catalog:
    table: pa.Table  # ITEMS_SCHEMA, the valid rows in catalog order
    errors: list[RowError]

    @property
    def items(self) -> list[CatalogItem]:
        """The valid rows as objects (for small catalogs: a million of them take a gigabyte)."""
        return [CatalogItem(**{**record, "updated_at": datetime.fromisoformat(record["updated_at"])})
                for record in self.table.drop_columns(["updated_us"]).to_pylist()]


def catalog_format(uri: str) -> str:
    """The format's name (:data:`FORMATS`) from the suffix of the URI's parsed path (never its query or fragment)."""
    try:
        local = uris.local_path(uri)
        path = local.as_posix() if local is not None else urlparse(uri).path
    except ValueError as exc:
        raise CatalogError(f"malformed catalog URI {uri!r}: {exc}") from None
    suffix = PurePosixPath(path).suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.suffixes:
            return fmt.name
    raise CatalogError(f"unknown catalog format {suffix.lstrip('.')!r} for {uri}: use {suffixes_text()}")


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


def _outcome(line: int, record: dict[str, Any] | str) -> CatalogItem | RowError:
    if isinstance(record, str):
        return RowError(line, record)
    try:
        return parse_row(record)
    except ValueError as exc:
        return RowError(line, str(exc))
    except RecursionError:  # a field nested just under the parser's limit, too deep to turn into text
        return RowError(line, "a field is nested too deep")


def _items_table(items: list[CatalogItem]) -> pa.Table:
    records = [item.to_record() for item in items]
    table = pa.Table.from_pylist(records, schema=ITEMS_SCHEMA.remove(ITEMS_SCHEMA.get_field_index("updated_us")))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    instants = [(item.updated_at - epoch) // _MICROSECOND for item in items]
    return table.append_column("updated_us", pa.array(instants, pa.int64()))


_MICROSECOND = timedelta(microseconds=1)


def _parse_rows(rows: Iterable[tuple[int, dict[str, Any] | str]]) -> tuple[Catalog, list[int]]:
    """The rows parsed one by one; and the positions (among ``rows``) of the valid ones."""
    items: list[CatalogItem] = []
    errors: list[RowError] = []
    valid: list[int] = []
    for position, (line, record) in enumerate(rows):
        outcome = _outcome(line, record)
        if isinstance(outcome, RowError):
            errors.append(outcome)
        else:
            items.append(outcome)
            valid.append(position)
    return Catalog(_items_table(items), errors), valid


def _parse_columns(raw: pa.Table, lines: np.ndarray) -> Catalog:
    """The plain rows validated as columns, the others one by one by parse_row, in catalog order."""
    values, plain = plain_items(raw)
    if plain.all():
        return Catalog(values.cast(ITEMS_SCHEMA), [])
    other = np.flatnonzero(~plain)
    fallback, valid = _parse_rows(zip(lines[other].tolist(), raw.take(pa.array(other)).to_pylist(), strict=True))
    rows = np.concatenate([np.flatnonzero(plain), other[np.asarray(valid, np.int64)]])
    table = pa.concat_tables([values.filter(pa.array(plain)).cast(ITEMS_SCHEMA), fallback.table])
    return Catalog(table.take(pa.array(np.argsort(rows, kind="stable"))), fallback.errors)


def _resolved(table: pa.Table, base_uri: str) -> pa.Table:
    """Relative image URIs made absolute against the catalog's location (each distinct one resolved once)."""
    column = table.column("image_uri")
    relative = pc.invert(pc.starts_with(column, "/"))
    if not pc.any(relative).as_py():
        return table
    encoded = column.combine_chunks().dictionary_encode()
    resolved = pa.array([uris.resolve(uri, base_uri) for uri in encoded.dictionary.to_pylist()], pa.string())
    return table.set_column(table.schema.get_field_index("image_uri"), "image_uri", resolved.take(encoded.indices))


def parse_catalog(data: bytes, fmt: str, base_uri: str = "") -> Catalog:
    catalog_format = format_of(fmt)
    try:
        columns = catalog_format.read_columns(data) if catalog_format.read_columns else None
        catalog = _parse_rows(catalog_format.read(data))[0] if columns is None else _parse_columns(*columns)
    except UnicodeDecodeError as exc:
        raise CatalogError(f"catalog is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise CatalogError(f"malformed CSV: {exc}") from None
    if base_uri:
        catalog.table = _resolved(catalog.table, base_uri)
    return catalog


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
    return format_of(fmt).write([item.to_record() for item in items])
