"""Nearest neighbours in a loaded index, with filters that never silently return fewer than k results."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imagesearch.index import exact_search
from imagesearch.index_store import LoadedIndex

# How much deeper than k/selectivity the approximate search looks before falling back to exact search.
DEPTH_MARGIN = 1.5
# Past this share of the index, a deep approximate search costs about as much as the exact one.
EXACT_ABOVE_SHARE = 0.5


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    on_sale_only: bool = False

    def mask(self, index: LoadedIndex) -> np.ndarray | None:
        """Rows that pass every filter, or None when nothing filters."""
        conditions = []
        if self.category is not None:
            conditions.append(index.categories == self.category)
        if self.min_price is not None:
            conditions.append(index.prices >= self.min_price)
        if self.max_price is not None:
            conditions.append(index.prices <= self.max_price)
        if self.on_sale_only:
            conditions.append(index.on_sale)
        return np.logical_and.reduce(conditions) if conditions else None


def nearest(
    index: LoadedIndex,
    query: np.ndarray,
    k: int,
    filters: Filters = Filters(),
    exclude: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores), best first: the min(k, matching items) nearest rows that pass ``filters``."""
    allowed = filters.mask(index)
    if exclude is not None:
        allowed = np.ones(index.size, dtype=bool) if allowed is None else allowed.copy()
        allowed[exclude] = False
    if allowed is None:
        rows, scores = index.vectors.search(query, k)
        return rows[0], scores[0]
    matching = int(allowed.sum())
    wanted = min(k, matching)
    if wanted == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    depth = math.ceil(DEPTH_MARGIN * wanted * index.size / matching) + 1
    if depth < EXACT_ABOVE_SHARE * index.size:
        rows, scores = index.vectors.search(query, depth)
        keep = allowed[rows[0]]
        if keep.sum() >= wanted:
            return rows[0][keep][:wanted], scores[0][keep][:wanted]
    subset = np.flatnonzero(allowed)
    rows, scores = exact_search(index.embeddings[subset], np.atleast_2d(query), wanted)
    return subset[rows[0]], scores[0]
