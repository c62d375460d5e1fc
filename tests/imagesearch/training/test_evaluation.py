"""The held-out split is a stable function of item ids; compare scores near-duplicates per transform and category
P@10 by exact search, the same for every model and however the database is chunked."""

from __future__ import annotations

import numpy as np
import pytest

from imagesearch.index import exact_search
from imagesearch.projection import IdentityProjection, LinearHead
from imagesearch.training import evaluation
from imagesearch.training.evaluation import Queries, compare, held_out, nearest, score


def test_the_held_out_split_depends_on_each_item_alone_and_never_overlaps_training() -> None:
    ids = [f"item-{number}" for number in range(5_000)]
    mask = held_out(ids, 0.2)
    assert 0.17 < mask.mean() < 0.23
    training = {item for item, out in zip(ids, mask, strict=True) if not out}
    held = {item for item, out in zip(ids, mask, strict=True) if out}
    assert training.isdisjoint(held) and training | held == set(ids)
    # Another order, more items, fewer items: every item keeps its side.
    shuffled = list(reversed(ids)) + [f"new-{number}" for number in range(100)]
    again = dict(zip(shuffled, held_out(shuffled, 0.2).tolist(), strict=True))
    assert all(again[i] == out for i, out in zip(ids, mask.tolist(), strict=True))
    assert held_out(ids[:10], 0.2).tolist() == mask[:10].tolist()
    assert held_out(ids, 0.2, salt="another").tolist() != mask.tolist()
    with pytest.raises(ValueError, match="between 0 and 1"):
        held_out(ids, 1.0)


def test_scores_are_counted_per_transform_and_categories_leave_the_query_out() -> None:
    # Four items on the axes; categories: rows 0, 1 are "a" (0), rows 2, 3 "b" (1).
    database = np.eye(4, dtype=np.float32)
    categories = np.array([0, 0, 1, 1])
    copies = np.array([[1, 0.1, 0, 0], [0.1, 1, 0, 0], [0, 0, 0.4, 0.6], [0.6, 0, 0, 0.4]], np.float32)
    queries = Queries(copies, np.array([0, 1, 2, 3]), np.array(["crop", "crop", "blur", "blur"]), np.array([0, 2]))
    found = score(IdentityProjection(4), database, categories, queries, k=1)
    assert found.per_transform == {"crop": 1.0, "blur": 0.0}  # the blurred copies land on rows 3 and 0
    assert found.near_dup_top1 == 0.5 and found.near_dup_worst == 0.0 and found.worst_transform == "blur"
    assert found.near_dup_queries == 4 and found.category_queries == 2
    # Every other item ties at cosine 0 for an axis: with k=1 the nearest other item is its own category's only if
    # the projection says so. Mixing the axes of each category makes them neighbours.
    mixing = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32) + 0.01 * np.eye(4, dtype=np.float32)
    grouped = score(LinearHead(mean=np.zeros(4, np.float32), weight=mixing), database, categories, queries, k=1)
    assert grouped.category_p10 == 1.0


def test_unknown_categories_are_neither_queries_nor_neighbours() -> None:
    database = np.array([[1, 0], [0.99, 0.1], [0.9, 0.3], [0, 1]], np.float32)
    categories = np.array([0, -1, 0, 1])
    queries = Queries(database[:1], np.array([0]), np.array(["t"]), np.array([0]))
    assert score(IdentityProjection(2), database, categories, queries, k=1).category_p10 == 1.0  # row 1 skipped
    with pytest.raises(ValueError, match="has no category"):
        score(IdentityProjection(2), database, categories, Queries(database[:1], np.array([0]), np.array(["t"]),
                                                                   np.array([1])))


def test_chunked_search_agrees_with_one_exact_search(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    database = rng.normal(size=(1_000, 16)).astype(np.float16)
    queries = rng.normal(size=(70, 16)).astype(np.float32)
    projection = LinearHead(mean=rng.normal(size=16).astype(np.float32),
                            weight=rng.normal(size=(16, 8)).astype(np.float32))
    truth, _ = exact_search(projection.apply(database), projection.apply(queries), 5)
    monkeypatch.setattr(evaluation, "DATABASE_CHUNK", 97)
    monkeypatch.setattr(evaluation, "QUERY_CHUNK", 16)
    assert (nearest(projection, database, queries, 5) == truth).all()
    subset = np.arange(0, 1_000, 3)
    truth_subset, _ = exact_search(projection.apply(database[subset]), projection.apply(queries), 5)
    assert (nearest(projection, database, queries, 5, subset) == subset[truth_subset]).all()


def test_compare_scores_candidate_current_and_raw_on_the_same_queries() -> None:
    rng = np.random.default_rng(0)
    database = rng.normal(size=(200, 8)).astype(np.float32)
    categories = rng.integers(0, 3, 200)
    queries = Queries(database[:50] + 0.05 * rng.normal(size=(50, 8)).astype(np.float32), np.arange(50),
                      np.full(50, "noise"), np.arange(50))
    identity = LinearHead(mean=np.zeros(8, np.float32), weight=np.eye(8, dtype=np.float32))
    scores = compare(identity, None, database, categories, queries)
    assert set(scores) == {"candidate", "raw"}
    assert scores["candidate"] == scores["raw"] and scores["raw"].near_dup_top1 == 1.0
    assert set(compare(identity, identity, database, categories, queries)) == {"candidate", "current", "raw"}


@pytest.mark.parametrize(("queries", "message"), [
    (Queries(np.zeros((2, 3), np.float32), np.array([0, 1]), np.array(["a", "b"]), np.array([0])), "must be"),
    (Queries(np.zeros((2, 8), np.float32), np.array([0, 500]), np.array(["a", "b"]), np.array([0])), "outside"),
    (Queries(np.zeros((2, 8), np.float32), np.array([0]), np.array(["a", "b"]), np.array([0])), "2 copies but"),
    (Queries(np.zeros((2, 8), np.float32), np.array([0, 1]), np.array(["a", "b"]), np.array([0.5])), "integer"),
])
def test_bad_queries_are_a_clear_value_error(queries: Queries, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score(IdentityProjection(8), np.eye(8, dtype=np.float32)[:8], None, queries)
