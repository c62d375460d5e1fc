"""Catalog rows validated a column at a time (Arrow), for the rows in a plain form.

:func:`plain_items` takes a raw table of the catalog's columns and returns, for every row, its validated values as
:func:`imagesearch.catalog.parse_row` would make them, and whether the row is *plain*: a form whose value this
module is sure of (an ISO timestamp in UTC, a decimal price, a trimmed text...). Every other row, valid or not,
goes through ``parse_row`` itself, so a rejected row's reason is always the one ``parse_row`` gives.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_ITEM_ID_CHARS = 256
# A character Python's str.strip() may remove: RE2's \s is ASCII only, \pZ adds the Unicode separators.
_EDGE_SPACE = r"^[\s\x0b\x1c-\x1f\x85\pZ]|[\s\x0b\x1c-\x1f\x85\pZ]$"
_DECIMAL = r"^[0-9]{1,15}(\.[0-9]{1,15})?$"  # short enough never to round to infinity
# The timestamps whose isoformat() is the text itself, with "Z" or nothing read as +00:00; a fraction of six digits
# that are all zero is printed without one, so it is left to parse_row.
_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"  # 0001 to 9999, as datetime has them
_TIMESTAMP = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\.[0-9]{{6}})?(Z|\+00:00)?$"
_TRUE_WORDS = ("true", "1", "yes", "y", "t", "True", "TRUE", "Yes", "YES")
_FALSE_WORDS = ("false", "0", "no", "n", "f", "False", "FALSE", "No", "NO")
TEXT_TYPES = (pa.string(), pa.large_string())
NUMBER_TYPES = (pa.float64(), pa.float32(), pa.int64(), pa.int32(), pa.int16(), pa.int8(),
                pa.uint64(), pa.uint32(), pa.uint16(), pa.uint8())


def _false(length: int) -> pa.Array:
    return pa.array(np.zeros(length, np.bool_))


def _text(column: pa.ChunkedArray, item_id: bool = False) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    if column.type not in TEXT_TYPES:
        return pa.chunked_array([pa.nulls(len(column), pa.string())]), pa.chunked_array([_false(len(column))])
    column = column.cast(pa.string())
    plain = pc.and_(pc.greater(pc.binary_length(column), 0), pc.invert(pc.match_substring_regex(column, _EDGE_SPACE)))
    if item_id:
        plain = pc.and_(plain, pc.and_(pc.invert(pc.match_substring(column, "/")),
                                       pc.less_equal(pc.utf8_length(column), MAX_ITEM_ID_CHARS)))
    return column, pc.fill_null(plain, False)


def _price(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    if column.type in TEXT_TYPES:
        plain = pc.fill_null(pc.match_substring_regex(column, _DECIMAL), False)
        values = pc.if_else(plain, column, "0").cast(pa.float64())
        return values, plain
    if column.type not in NUMBER_TYPES:
        return pa.chunked_array([pa.nulls(len(column), pa.float64())]), pa.chunked_array([_false(len(column))])
    values = column.cast(pa.float64(), safe=False)
    plain = pc.fill_null(pc.and_(pc.is_finite(values), pc.greater_equal(values, 0.0)), False)
    return values, plain


def _flag(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    if column.type == pa.bool_():
        return column, pc.is_valid(column)
    if column.type in TEXT_TYPES:
        values = pc.is_in(column, value_set=pa.array(_TRUE_WORDS))
        plain = pc.or_(values, pc.is_in(column, value_set=pa.array(_FALSE_WORDS)))
        return values, plain
    return pa.chunked_array([pa.nulls(len(column), pa.bool_())]), pa.chunked_array([_false(len(column))])


def _moment(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray]:
    """(isoformat text, microseconds since the epoch, plain) of a text column of UTC timestamps."""
    if column.type not in TEXT_TYPES:
        nulls = pa.chunked_array([pa.nulls(len(column), pa.string())])
        return nulls, pa.chunked_array([pa.nulls(len(column), pa.int64())]), pa.chunked_array([_false(len(column))])
    column = column.cast(pa.string())
    plain = pc.fill_null(pc.and_(pc.match_substring_regex(column, _TIMESTAMP),
                                 pc.invert(pc.match_substring(column, ".000000"))), False)
    column = pc.if_else(plain, column, "1970-01-01T00:00:00")  # the others' values are never read
    whole = pc.utf8_slice_codeunits(column, 0, 19)
    seconds = pc.strptime(whole, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    # strptime rolls an impossible date over (Feb 30 -> Mar 2): only a text that prints back as itself is plain.
    plain = pc.and_(plain, pc.fill_null(pc.equal(pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"), whole), False))
    fraction = pc.utf8_slice_codeunits(column, 19, 26)
    has_fraction = pc.starts_with(fraction, ".")
    micros = pc.if_else(has_fraction, pc.utf8_slice_codeunits(fraction, 1, 7), "0").cast(pa.int64())
    instant = pc.add(pc.multiply(seconds.cast(pa.int64()), 1_000_000), micros)
    text = pc.binary_join_element_wise(whole, pc.if_else(has_fraction, pc.utf8_slice_codeunits(fraction, 0, 7), ""),
                                       "+00:00", "")
    return text, instant, plain


def plain_items(raw: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """(the catalog columns as parse_row makes them plus ``updated_us``, the instant in microseconds; which rows are
    plain). The values of rows that are not plain are meaningless."""
    item_id, id_plain = _text(raw.column("item_id"), item_id=True)
    columns: dict[str, pa.ChunkedArray] = {"item_id": item_id}
    plain = id_plain
    for name in ("image_uri", "title", "category"):
        columns[name], ok = _text(raw.column(name))
        plain = pc.and_(plain, ok)
    columns["price"], ok = _price(raw.column("price"))
    plain = pc.and_(plain, ok)
    columns["on_sale"], ok = _flag(raw.column("on_sale"))
    plain = pc.and_(plain, ok)
    columns["updated_at"], columns["updated_us"], ok = _moment(raw.column("updated_at"))
    plain = pc.and_(plain, ok)
    return pa.table(columns), np.asarray(plain.combine_chunks() if isinstance(plain, pa.ChunkedArray) else plain,
                                         np.bool_)
