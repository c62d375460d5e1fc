"""Filtered search returns exactly what an exact search over the matching items returns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from imagesearch.index import exact_search
from imagesearch.index_store import LoadedIndex, load_index
from serving import search as search_module
from serving.memory_limit import build_peak_bytes, category_index_bytes
from serving.search import Filters, build_category_indexes, nearest

FILTERS = [
    Filters(),
    Filters(category="space"),
    Filters(category="pets"),
    Filters(min_price=11.5),
    Filters(max_price=12),
    Filters(min_price=12, max_price=16, on_sale_only=True),
    Filters(on_sale_only=True),
    Filters(category="nothing"),
]


@pytest.fixture(scope="module")
def index(index_a: Path) -> LoadedIndex:
    return load_index(index_a)


def expected(index: LoadedIndex, query: np.ndarray, k: int, filters: Filters, exclude: int | None) -> list[int]:
    allowed = filters.mask(index)
    allowed = np.ones(index.size, dtype=bool) if allowed is None else allowed.copy()
    if exclude is not None:
        allowed[exclude] = False
    subset = np.flatnonzero(allowed)
    if len(subset) == 0:
        return []
    rows, _ = exact_search(index.embeddings[subset], query[None], min(k, len(subset)))
    return subset[rows[0]].tolist()


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
@pytest.mark.parametrize("k", [1, 4, 10, 100])
def test_filtered_results_equal_exact_search_over_the_matching_items(index: LoadedIndex, filters: Filters, k: int) -> None:
    rng = np.random.default_rng(k)
    for row in rng.choice(index.size, 3, replace=False):
        query = index.embeddings[row]
        for exclude in (None, int(row)):
            found = nearest(index, query, k, filters, exclude)
            assert found.rows.tolist() == expected(index, query, k, filters, exclude) and not found.capped
            assert np.all(np.diff(found.scores) <= 1e-6)


class Spy:
    """Records how many rows each exact search and each approximate search looked at."""

    def __init__(self, index: LoadedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
        self.exact_rows: list[int] = []
        self.depths: list[int] = []
        search, exact = index.vectors.search, search_module.exact_search

        def spy_search(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            self.depths.append(k)
            return search(queries, k)

        def spy_exact(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            self.exact_rows.append(len(database))
            return exact(database, queries, k)

        monkeypatch.setattr(index.vectors, "search", spy_search)
        monkeypatch.setattr(search_module, "exact_search", spy_exact)


@pytest.mark.parametrize("max_rows", [3, 6, 11])
@pytest.mark.parametrize("filters", FILTERS[1:-1], ids=repr)
def test_work_per_request_is_bounded_and_a_capped_answer_says_so(
    index: LoadedIndex, filters: Filters, max_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never more than max_rows rows in an exact pass or an approximate search; uncapped answers stay exact; a capped
    answer holds only true matches, best first, and is a prefix of the exact answer."""
    spy = Spy(index, monkeypatch)
    monkeypatch.setattr(search_module, "EXACT_CHUNK_ROWS", 4)
    for row in range(0, index.size, 3):
        query = index.embeddings[row]
        for k in (1, 4, 10):
            found = nearest(index, query, k, filters, max_rows=max_rows)
            exact = expected(index, query, k, filters, None)
            if found.capped:
                assert 0 <= len(found.rows) < len(exact) and found.rows.tolist() == exact[: len(found.rows)]
            else:
                assert found.rows.tolist() == exact
    assert spy.exact_rows or spy.depths
    assert max(spy.exact_rows, default=0) <= 4 and max(spy.depths, default=0) <= max_rows


def test_a_far_away_filter_is_capped_not_searched_exhaustively(index: LoadedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query in one category, filtered to everything else: with a cap of 2 rows it cannot find 10 matches."""
    spy = Spy(index, monkeypatch)
    row = index.row_of["astronaut"]
    found = nearest(index, index.embeddings[row], 10, Filters(min_price=0), exclude=row, max_rows=2)
    assert found.capped and len(found.rows) <= 2 and spy.exact_rows == [] and max(spy.depths) == 2


def test_a_large_category_is_searched_in_its_own_index(index: LoadedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a cap of 1 row every category of 2+ items is "large" and gets its own index; category filters are answered
    from it, never from the whole index, with the exact answer."""
    assert build_category_indexes(replace(index, category_indexes={}), max_rows=1, wanted=lambda: False) == 0
    with_categories = replace(index, category_indexes={})
    built = build_category_indexes(with_categories, max_rows=1)
    names, counts = np.unique(index.categories.astype(str), return_counts=True)
    assert set(with_categories.category_indexes) == {name for name, count in zip(names, counts, strict=True) if count > 1}
    assert built == len(with_categories.category_indexes) > 0
    spy = Spy(with_categories, monkeypatch)
    for category in with_categories.category_indexes:
        for row in range(index.size):
            found = nearest(with_categories, index.embeddings[row], 1, Filters(category=category), max_rows=1)
            exact = expected(index, index.embeddings[row], 1, Filters(category=category), None)
            assert found.rows.tolist() == exact and not found.capped
    # never the whole index, and an exact pass only over the int8 pass's best RERANK_FACTOR * k candidates
    assert spy.depths == [] and max(spy.exact_rows) <= search_module.RERANK_FACTOR


def test_a_category_common_enough_to_find_in_the_whole_index_gets_no_index_of_its_own(
        index: LoadedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "MAX_K", 1)  # found within 2 rows of the whole index: a share of at least 1.5 / 2
    size = index.size
    assert size >= 12
    categories = np.asarray(["common"] * (size - 3) + ["rare"] * 3, dtype=object)
    split = replace(index, categories=categories, category_indexes={})
    assert build_category_indexes(split, max_rows=2) == 1
    assert set(split.category_indexes) == {"rare"}


def test_category_indexes_are_built_only_within_the_memory_budget(index: LoadedIndex) -> None:
    """A budget too small for any index builds none; one that fits the largest category's build leaves too little
    for the next (its build needs its float32 rows as well); filtered searches answer only items of the category
    either way, the exact answer when the whole index holds it."""
    dim, size = index.embeddings.shape[1], index.size
    big, mid = size // 2, size - size // 2 - 1
    assert build_peak_bytes(mid, dim) > build_peak_bytes(big, dim) - category_index_bytes(big, dim)
    categories = np.asarray(["big"] * big + ["mid"] * mid + ["solo"], dtype=object)
    split = replace(index, categories=categories, category_indexes={})
    none = replace(split, category_indexes={})
    assert build_category_indexes(none, max_rows=1, budget_bytes=build_peak_bytes(mid, dim) - 1) == 0
    assert none.category_indexes == {}
    one = replace(split, category_indexes={})
    assert build_category_indexes(one, max_rows=1, budget_bytes=build_peak_bytes(big, dim)) == 1
    assert set(one.category_indexes) == {"big"}
    for served in (none, one):
        for category in ("big", "mid", "solo"):
            for row in range(0, size, 3):
                found = nearest(served, index.embeddings[row], 3, Filters(category=category), max_rows=1)
                assert set(served.categories[found.rows]) <= {category}
                exact = expected(split, index.embeddings[row], 3, Filters(category=category), None)
                assert found.rows.tolist() == exact[: len(found.rows)]  # exact, or a best-first prefix when capped
                assert found.capped or found.rows.tolist() == exact
