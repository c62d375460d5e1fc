"""A version's items as the server holds them: Arrow columns, not a Python object per row and field.

At a million items ``items.parquet`` read into a dict of lists held ~9 million Python objects, plus a dict of a
million ids to rows; here the columns stay in Arrow's buffers, a row's values are made only when it is answered,
and an id is found by binary search over the ids in sorted order (one int64 per row).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class ItemColumn(Sequence[Any]):
    """One column: ``column[row]`` is that row's Python value."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, row: int) -> Any: ...
    @overload
    def __getitem__(self, row: slice) -> list[Any]: ...
    def __getitem__(self, row: int | slice) -> Any:
        if isinstance(row, slice):
            return self.values[row].to_pylist()
        if not -len(self) <= row < len(self):
            raise IndexError(f"row {row} is not in a column of {len(self)}")
        return self.values[row].as_py()


class ItemRows(Mapping[str, int]):
    """item_id -> row, by binary search over the ids sorted once (nulls, never a served id, left out)."""

    def __init__(self, ids: pa.Array) -> None:
        order = pc.array_sort_indices(ids, null_placement="at_end")
        self._rows = order.to_numpy()
        self._sorted = ItemColumn(ids.take(order))
        self._count = len(ids) - ids.null_count

    def __getitem__(self, item_id: str) -> int:
        if not isinstance(item_id, str):
            raise KeyError(item_id)
        at = bisect.bisect_left(self._sorted, item_id, 0, self._count)
        if at < self._count and self._sorted[at] == item_id:
            return int(self._rows[at])
        raise KeyError(item_id)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return (self._sorted[at] for at in range(self._count))


class ItemTable:
    """The items of a version, row = vector: ``table["title"][row]``, ``table.rows[item_id]``."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table.combine_chunks()
        self._columns = {name: ItemColumn(self.table.column(name).combine_chunks()) for name in self.table.column_names}
        self.rows = ItemRows(self._columns["item_id"].values)

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, name: str) -> ItemColumn:
        return self._columns[name]

    def distinct(self, name: str) -> list[Any]:
        """The column's distinct values, sorted (nulls left out)."""
        return sorted(pc.unique(self._columns[name].values).drop_null().to_pylist())

    def labels(self, name: str) -> np.ndarray:
        """The column as an object array that holds each distinct value once (a row is a reference to it)."""
        values = self._columns[name].values
        if values.null_count:
            return np.asarray(values.to_pylist(), dtype=object)
        encoded = pc.dictionary_encode(values)
        return np.asarray(encoded.dictionary.to_pylist(), dtype=object)[encoded.indices.to_numpy()]

    def numbers(self, name: str, dtype: np.dtype | type) -> np.ndarray:
        return np.asarray(self._columns[name].values.to_numpy(zero_copy_only=False), dtype=dtype)
