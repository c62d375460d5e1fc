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


_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25])  # YYYY-MM-DDTHH:MM:SS.ffffff


def _digits(column: pa.Array) -> np.ndarray:
    """The digits at _DIGITS of every text (each at least 19 bytes long), read straight from the Arrow buffers: as
    one view when every text has the same length (the usual case), else gathered a position at a time."""
    offsets = np.frombuffer(column.buffers()[1], np.int32)[column.offset : column.offset + len(column) + 1]
    data = np.frombuffer(column.buffers()[2], np.uint8)
    width = int(offsets[1] - offsets[0])
    if width >= 19 and offsets[-1] - offsets[0] == width * len(column) and np.all(np.diff(offsets) == width):
        rows = data[offsets[0] : offsets[-1]].reshape(len(column), width)
        digits = np.full((len(column), len(_DIGITS)), ord("0"), np.uint8)
        known = _DIGITS[width > _DIGITS]
        digits[:, : len(known)] = rows[:, known]
    else:
        starts = offsets[:-1].astype(np.int64)
        digits = np.stack([data[np.minimum(starts + position, len(data) - 1)] for position in _DIGITS], axis=1)
    digits -= ord("0")  # a plain text has a digit at each of these places (its pattern says so); the rest are masked
    return digits


def _epoch_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (years 1 to 9999)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _moment(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray]:
    """(isoformat text, microseconds since the epoch, plain) of a text column of UTC timestamps."""
    if column.type not in TEXT_TYPES or not len(column):
        nulls = pa.chunked_array([pa.nulls(len(column), pa.string())])
        return nulls, pa.chunked_array([pa.nulls(len(column), pa.int64())]), pa.chunked_array([_false(len(column))])
    column = column.cast(pa.string())
    plain = pc.fill_null(pc.and_(pc.match_substring_regex(column, _TIMESTAMP),
                                 pc.invert(pc.match_substring(column, ".000000"))), False)
    texts = pc.if_else(plain, column, "1970-01-01T00:00:00").combine_chunks()  # the others' values are never read
    digits = _digits(texts)
    number = [digits[:, start:end].astype(np.int64) @ (10 ** np.arange(end - start - 1, -1, -1)) for start, end in
              ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14), (14, 20))]
    year, month, day, hour, minute, second, fraction = number
    month_index = np.clip(month - 1, 0, 11)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = _DAYS_IN_MONTH[month_index] + ((month == 2) & leap)
    valid = ((month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month) & (hour <= 23) & (minute <= 59)
             & (second <= 59))
    has_fraction = np.asarray(pc.equal(pc.utf8_slice_codeunits(texts, 19, 20), "."), np.bool_)
    seconds = _epoch_days(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    instant = seconds * 1_000_000 + np.where(has_fraction, fraction, 0)
    if pc.all(pc.ends_with(texts, "+00:00")).as_py():
        text = texts
    else:
        text = pc.replace_substring_regex(texts, r"(Z|\+00:00)?$", "+00:00", max_replacements=1)
    plain = pc.and_(plain, pa.array(valid))
    return pa.chunked_array([text]), pa.chunked_array([pa.array(instant)]), plain


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
