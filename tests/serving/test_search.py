"""Filtered search returns exactly what an exact search over the matching items returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.index import exact_search
from imagesearch.index_store import LoadedIndex, load_index
from serving import search as search_module
from serving.search import Filters, nearest

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
            rows, scores = nearest(index, query, k, filters, exclude)
            assert rows.tolist() == expected(index, query, k, filters, exclude)
            assert np.all(np.diff(scores) <= 1e-6)


def test_the_deep_approximate_path_is_used_and_falls_back_when_short(index: LoadedIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a permissive threshold the approximate search answers; too few matches in it -> exact fallback."""
    calls: list[int] = []
    original = index.vectors.search

    def spy(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(k)
        return original(queries, k)

    monkeypatch.setattr(index.vectors, "search", spy)
    monkeypatch.setattr(search_module, "EXACT_ABOVE_SHARE", 10.0)
    monkeypatch.setattr(search_module, "DEPTH_MARGIN", 0.01)  # too shallow on purpose: forces the fallback
    query = index.embeddings[0]
    filters = Filters(on_sale_only=True)
    rows, _ = nearest(index, query, 8, filters)
    assert calls and rows.tolist() == expected(index, query, 8, filters, None)
    monkeypatch.setattr(search_module, "DEPTH_MARGIN", 1.5)
    rows, _ = nearest(index, query, 3, filters)
    assert rows.tolist() == expected(index, query, 3, filters, None)
