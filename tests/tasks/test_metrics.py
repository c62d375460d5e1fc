"""tasks.metrics: each metric on a real ScaNN index whose answers are known."""

from __future__ import annotations

import numpy as np

from imagesearch.index import VectorIndex, choose_params
from imagesearch.projection import IdentityProjection
from tasks.metrics import Scorable, category_precision_at_k, recall_at_k, score, without_near_duplicates


def clusters() -> tuple[np.ndarray, list[str]]:
    """Two tight, far-apart clusters of 20 unit vectors each: every neighbour of a point is in its own cluster."""
    rng = np.random.default_rng(0)
    centres = np.eye(16, dtype=np.float32)[:2]
    vectors = np.concatenate([centres[i] + 0.01 * rng.standard_normal((20, 16)).astype(np.float32) for i in (0, 1)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, ["a"] * 20 + ["b"] * 20


def test_exact_search_recalls_itself_and_clusters_are_precise() -> None:
    vectors, categories = clusters()
    index = VectorIndex.build(vectors, choose_params(len(vectors)))
    queries = np.arange(0, 40, 4)
    assert recall_at_k(index, vectors, queries) == 1.0
    assert category_precision_at_k(index, vectors, categories, queries) == 1.0
    assert category_precision_at_k(index, vectors, ["a", "b"] * 20, queries) < 0.7  # categories the vectors ignore


def test_score_finds_each_copy_s_original() -> None:
    vectors, categories = clusters()
    index = VectorIndex.build(vectors, choose_params(len(vectors)))
    version = Scorable("v", index, vectors, IdentityProjection(vectors.shape[1]), [f"i{row}" for row in range(40)], categories)
    copies = {"i3": vectors[3] + 0.0001, "i25": vectors[25], "gone": vectors[0]}  # "gone": an item it does not hold
    metrics = score(version, ["i0", "i21"], copies)
    assert metrics["recall_at_10"] == 1.0 and metrics["category_precision_at_10"] == 1.0
    assert metrics["near_duplicate_top10"] == 1.0 and metrics["near_duplicate_top1"] >= 0.5
    assert set(without_near_duplicates(metrics)) == {"recall_at_10", "category_precision_at_10"}
