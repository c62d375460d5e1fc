"""Nearest neighbours in a loaded index, with filters, in bounded work per request.

The rows a filter matches come from the item columns (one pass over booleans, no vectors). Then:

- at most ``max_rows`` rows match: exact search over just those rows, a chunk at a time (the exact answer);
- more match: in the category's own index when the filter names a category with more than ``max_rows`` items
  (built after load, in the background, by :func:`build_category_indexes`; only as many as fit the memory
  budget, serving/memory_limit.py): an int8 brute-force pass over its rows, whose best ``RERANK_FACTOR * k``
  are scored again exactly (bench/category_memory.py: recall@10 1.000 where a tree + AH index per category
  gave 0.73, at a quarter of float32's memory); else an approximate search in the whole index.
  The whole index is searched ``DEPTH_MARGIN * k / selectivity`` deep and keeps the matching rows; when fewer than k are among
  them it looks once more, ``max_rows`` deep, and stops there. If even that holds fewer than k matches
  (e.g. a price range whose items are all far from the query), the answer is the matches found, flagged
  ``capped``: never an exact pass over a large matching subset.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from imagesearch.index import IndexParams, VectorIndex, exact_search
from imagesearch.index_store import LoadedIndex, SubIndex, float32_rows
from imagesearch.settings import MAX_K
from serving.memory_limit import MIB, build_peak_bytes, category_index_bytes

# How much deeper than k/selectivity the first approximate search looks.
DEPTH_MARGIN = 1.5
# The exact search over a small matching subset copies this many vectors at a time.
EXACT_CHUNK_ROWS = 1024
DEFAULT_MAX_ROWS = 4096
# A category index's int8 scores pick this many times k candidates; exact scores of those give the answer.
RERANK_FACTOR = 2
CATEGORY_INDEX = IndexParams(kind="brute_force_int8")

log = logging.getLogger(__name__)


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
    category = index.category_indexes.get(filters.category) if filters.category is not None else None
    if category is not None:
        candidates = _deep_search(category.vectors, category.rows, query, allowed[category.rows],
                                  min(RERANK_FACTOR * wanted, matching), max_rows, matching)
        if len(candidates.rows) == 0:
            return candidates
        best = _exact_among(index, query, candidates.rows, wanted)
        return best._replace(capped=len(best.rows) < wanted)
    return _deep_search(index.vectors, None, query, allowed, wanted, max_rows, matching)


def build_category_indexes(
    index: LoadedIndex, max_rows: int, wanted: Callable[[], bool] = lambda: True, budget_bytes: int | None = None,
    params: Callable[[int], IndexParams] = lambda _: CATEGORY_INDEX,
) -> int:
    """Give a category its own index when it has more than ``max_rows`` items but too small a share of the whole
    for a search of the whole index to find ``MAX_K`` of them within ``max_rows`` (a category of a tenth of a
    million items is found 1,500 deep: it needs no index, nor its memory). Largest first, while ``wanted()``,
    each only if its build fits what is left of ``budget_bytes`` (None: no bound; a category that does not fit
    is served from the whole index, with the depth cap); how many were built. ``params``: how a category of
    that many rows is indexed (bench/category_memory.py also measures ``choose_params``' tree + AH index, the
    one of before). Each one serves as soon as it is in ``index.category_indexes`` (one dict assignment); until
    then that category's searches go to the whole index."""
    names, counts = np.unique(index.categories.astype(str), return_counts=True)
    too_common = DEPTH_MARGIN * MAX_K * index.size / max_rows
    dim = index.embeddings.shape[1]
    left = math.inf if budget_bytes is None else budget_bytes
    built, skipped = 0, []
    for count, name in sorted(zip(counts.tolist(), names.tolist(), strict=True), reverse=True):
        if count >= too_common:
            continue
        if count <= max_rows or not wanted():
            break
        if build_peak_bytes(count, dim) > left:
            skipped.append(name)
            continue
        rows = np.flatnonzero(index.categories == name)
        index.category_indexes[name] = SubIndex(rows, VectorIndex.build(float32_rows(index.embeddings, rows),
                                                                        params(count)))
        left -= category_index_bytes(count, dim)
        built += 1
    if skipped:
        log.warning("version %s: %d categories get no index of their own (over the memory budget of %d MiB): %s",
                    index.version, len(skipped), (budget_bytes or 0) // MIB, ", ".join(skipped[:10]))
    return built


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
    vectors: VectorIndex, rows_of: np.ndarray | None, query: np.ndarray, allowed: np.ndarray, wanted: int, max_rows: int,
    matching: int,
) -> Neighbours:
    """Search ``vectors`` (whose row i is the version's row ``rows_of[i]``, or i) for ``wanted`` allowed rows."""
    max_depth = min(max_rows, vectors.size)
    depth = min(math.ceil(DEPTH_MARGIN * wanted * vectors.size / matching) + 1, max_depth)
    while True:
        rows, scores = vectors.search(query, depth)
        keep = allowed[rows[0]]
        found = int(keep.sum())
        if found >= wanted or depth >= max_depth:
            kept = rows[0][keep][:wanted]
            return Neighbours(kept if rows_of is None else rows_of[kept], scores[0][keep][:wanted], capped=found < wanted)
        depth = max_depth
