"""Nearest neighbours in a loaded index, with filters, in bounded work per request.

The rows a filter matches come from the item columns (one pass over booleans, no vectors). Then:

- at most ``max_rows`` rows match: exact search over just those rows, a chunk at a time (the exact answer);
- more match: the approximate search looks ``DEPTH_MARGIN * k / selectivity`` deep and keeps the matching
  rows; when fewer than k are among them it looks once more, ``max_rows`` deep, and stops there. If even
  that holds fewer than k matches (the matching items are all far from the query), the answer is the
  matches found, flagged ``capped``: never an exact pass over a large matching subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from imagesearch.index import exact_search
from imagesearch.index_store import LoadedIndex

# How much deeper than k/selectivity the first approximate search looks.
DEPTH_MARGIN = 1.5
# The exact search over a small matching subset copies this many vectors at a time.
EXACT_CHUNK_ROWS = 1024
DEFAULT_MAX_ROWS = 4096


class Neighbours(NamedTuple):
    """Rows and scores, best first; ``capped``: the depth cap was reached before k matches were found."""

    rows: np.ndarray
    scores: np.ndarray
    capped: bool = False


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
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Neighbours:
    """The min(k, matching items) nearest rows that pass ``filters``, examining at most ~``max_rows`` rows."""
    allowed = filters.mask(index)
    if exclude is not None:
        allowed = np.ones(index.size, dtype=bool) if allowed is None else allowed.copy()
        allowed[exclude] = False
    if allowed is None:
        rows, scores = index.vectors.search(query, k)
        return Neighbours(rows[0], scores[0])
    matching = int(allowed.sum())
    wanted = min(k, matching)
    if wanted == 0:
        return Neighbours(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    if matching <= max_rows:
        return _exact_among(index, query, np.flatnonzero(allowed), wanted)
    first_depth = math.ceil(DEPTH_MARGIN * wanted * index.size / matching) + 1
    return _deep_search(index, query, allowed, wanted, min(max_rows, index.size), first_depth)


def _exact_among(index: LoadedIndex, query: np.ndarray, subset: np.ndarray, k: int) -> Neighbours:
    queries = np.atleast_2d(query)
    found_rows, found_scores = [], []
    for start in range(0, len(subset), EXACT_CHUNK_ROWS):
        chunk = subset[start : start + EXACT_CHUNK_ROWS]
        rows, scores = exact_search(index.embeddings[chunk], queries, k)
        found_rows.append(chunk[rows[0]])
        found_scores.append(scores[0])
    rows, scores = np.concatenate(found_rows), np.concatenate(found_scores)
    best = np.argsort(-scores, kind="stable")[:k]
    return Neighbours(rows[best], scores[best])


def _deep_search(
    index: LoadedIndex, query: np.ndarray, allowed: np.ndarray, wanted: int, max_depth: int, first_depth: int
) -> Neighbours:
    depth = min(first_depth, max_depth)
    while True:
        rows, scores = index.vectors.search(query, depth)
        keep = allowed[rows[0]]
        found = int(keep.sum())
        if found >= wanted or depth >= max_depth:
            return Neighbours(rows[0][keep][:wanted], scores[0][keep][:wanted], capped=found < wanted)
        depth = max_depth
