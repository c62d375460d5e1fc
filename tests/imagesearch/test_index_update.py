"""A ScaNN tree index updated in place (rows deleted, vectors upserted) finds what one built anew on the same
vectors finds, never returns a deleted row, and says which row each of its rows was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.index import VectorIndex, choose_params
from imagesearch.vectors import l2_normalize
from tasks.index_update import ROW_TOLERANCE
from tasks.metrics import recall_at_k


def clustered(rng: np.random.Generator, count: int, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), count)
    return l2_normalize(centres[picks] + 0.35 * rng.normal(size=(count, centres.shape[1]))).astype(np.float32)


@pytest.fixture(scope="module")
def updated(tmp_path_factory: pytest.TempPathFactory) -> tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray, Path]:
    """A 6,000-row tree index saved, reloaded, 400 of its rows deleted and 500 vectors upserted: (index, all vectors
    ever held, order, deleted rows, saved folder)."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 32))
    first = clustered(rng, 6000, centres)
    params = choose_params(len(first), brute_force_below=100)
    folder = tmp_path_factory.mktemp("built")
    VectorIndex.build(first, params).save(folder)
    index = VectorIndex.load(folder, params, len(first))
    deleted = np.sort(rng.choice(len(first), 400, replace=False))
    new = clustered(rng, 500, centres)
    order = index.update(deleted, new)
    saved = tmp_path_factory.mktemp("updated")
    index.save(saved)
    return index, np.concatenate([first, new]), order, deleted, saved


def test_the_order_says_which_row_each_row_was(updated: tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray, Path]) -> None:
    index, vectors, order, deleted, saved = updated
    assert index.size == len(order) == 6000 - 400 + 500
    assert sorted(order.tolist()) == sorted(set(range(6500)) - set(deleted.tolist()))
    moved = order != np.arange(len(order))
    assert 0 < moved[:5600].sum() <= 400  # only rows from the tail fill the deleted rows' places
    held = VectorIndex.saved_rows(saved, np.arange(index.size), vectors.shape[1])
    assert held is not None, "the saved index holds no re-ranking rows"
    assert np.linalg.norm(held - vectors[order], axis=1).max() <= ROW_TOLERANCE  # within the dtype's precision


def test_an_updated_index_finds_what_a_rebuilt_one_finds(
        updated: tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray, Path]) -> None:
    index, vectors, order, _, saved = updated
    database = vectors[order]
    queries = np.sort(np.random.default_rng(1).choice(len(database), 300, replace=False))
    rebuilt = VectorIndex.build(database, index.params)
    recall_updated, recall_rebuilt = recall_at_k(index, database, queries), recall_at_k(rebuilt, database, queries)
    assert recall_updated >= 0.9 and recall_updated >= recall_rebuilt - 0.02, (recall_updated, recall_rebuilt)
    reloaded = VectorIndex.load(saved, index.params, index.size)
    assert np.array_equal(reloaded.search(database[queries], 10)[0], index.search(database[queries], 10)[0])


def test_a_deleted_row_is_never_returned(updated: tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray, Path]) -> None:
    index, vectors, order, deleted, saved = updated
    reloaded = VectorIndex.load(saved, index.params, index.size)
    for searcher in (index, reloaded):
        found, _ = searcher.search(vectors[deleted], 50)  # each deleted vector would be its own first neighbour
        assert found.max() < index.size
        assert not set(order[found].ravel().tolist()) & set(deleted.tolist())


def test_rows_to_delete_must_be_rows_of_the_index(updated: tuple[VectorIndex, np.ndarray, np.ndarray, np.ndarray, Path]) -> None:
    index, vectors, _, _, _ = updated
    size = index.size
    with pytest.raises(ValueError, match=r"rows to delete must lie in \[0, 6100\)"):
        index.update(np.array([size]), vectors[:1])
    assert index.size == size


@pytest.mark.parametrize("reorder_dtype", ["float32", "bfloat16", "int8"])
def test_saved_rows_decode_each_re_ranking_dtype_and_tell_a_wrong_row(reorder_dtype: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((2000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = choose_params(len(vectors), brute_force_below=100, reorder_dtype=reorder_dtype)  # type: ignore[arg-type]
    VectorIndex.build(vectors, params).save(tmp_path)
    rows = np.arange(0, 2000, 7)
    held = VectorIndex.saved_rows(tmp_path, rows, 64)
    assert held is not None
    assert np.linalg.norm(held - vectors[rows], axis=1).max() <= ROW_TOLERANCE
    assert np.linalg.norm(held - vectors[rows + 1], axis=1).min() > ROW_TOLERANCE  # another row's vector is told apart
    assert VectorIndex.saved_rows(tmp_path, rows, 32) is None  # not of this width
