"""The stored vectors and items of a version: float16 on disk, read back in row ranges, written from chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch import index_store
from imagesearch.artifacts import fetch, publish, seal
from imagesearch.errors import ArtifactError
from imagesearch.index import VectorIndex, choose_params
from imagesearch.index_store import StoredVectors, search_space, write_vectors
from imagesearch.manifest import Manifest, ModelInfo
from imagesearch.projection import PROJECTION, IdentityProjection, PcaWhitening
from imagesearch.repository import open_repository
from imagesearch.vectors import l2_normalize


def test_vectors_written_in_chunks_read_back_by_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_store, "CHUNK_ROWS", 7)  # many chunks on a small matrix
    vectors = l2_normalize(np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32))
    path = tmp_path / "embeddings.npy"
    write_vectors(path, (vectors[start : start + 7] for start in range(0, 50, 7)), vectors.shape)
    assert np.load(path).dtype == np.float16
    stored = StoredVectors(path)
    assert len(stored) == 50
    np.testing.assert_allclose(stored.rows(10, 20), vectors[10:20], atol=1e-3)
    assert stored.rows(49, 60).shape == (1, 16) and stored.rows(5, 5).shape == (0, 16)
    rows = np.array([0, 3, 8, 9, 30, 49])
    np.testing.assert_allclose(stored.take(rows), vectors[rows], atol=1e-3)
    as_stored = stored.take(rows, np.float16)  # copied unconverted: the stored bits themselves
    assert as_stored.dtype == np.float16 and np.array_equal(as_stored, np.load(path)[rows])
    whitening = PcaWhitening.fit(vectors, 8)
    np.testing.assert_allclose(stored.search_space(whitening), search_space(stored.rows(0, 50), whitening), atol=1e-6)
    np.testing.assert_allclose(stored.search_space(whitening), whitening.apply(np.load(path)), atol=1e-6)
    with pytest.raises(ValueError, match="wrote 7 rows"):
        write_vectors(tmp_path / "short.npy", [vectors[:7]], vectors.shape)


def test_items_round_trip_in_the_schema(tmp_path: Path) -> None:
    record = {"item_id": "a1", "title": "Mug", "category": "kitchen", "price": 9.99, "on_sale": True,
              "image_uri": "/data/a1.png", "image_sha256": "0" * 64, "updated_at": "2026-01-01T00:00:00+00:00",
              "image_stamp": "12:34"}
    index_store.write_items(tmp_path / index_store.ITEMS, [record])
    assert {name: values[0] for name, values in index_store.read_items(tmp_path / index_store.ITEMS).items()} == record
    assert index_store.read_projection(tmp_path, None, 16).kind == "identity"  # neither file: a pre-whitening version


def test_a_version_without_index_parameters_is_an_artifact_error_not_a_crash(tmp_path: Path) -> None:
    version, built = "20260101T000000Z", tmp_path / "built"
    built.mkdir()
    index_store.write_items(built / index_store.ITEMS, [{"item_id": "a", "image_uri": "a.png", "category": "shoes"}])
    write_vectors(built / index_store.EMBEDDINGS, [l2_normalize(np.ones((1, 4), np.float32))], (1, 4))
    seal(built, Manifest(version=version, created_at="2026-01-01T00:00:00+00:00", item_count=1,
                         model=ModelInfo("test", "0" * 64, "test-model", 4)))
    repository = open_repository(str(tmp_path / "models"))
    publish(repository, built)
    fetch(repository, version, tmp_path / "fetched")
    with pytest.raises(ArtifactError, match="has no index"):
        index_store.load_index(tmp_path / "fetched")


@pytest.mark.parametrize("count", [300, 25_000])  # brute force, then a tree index (int8 re-ranking)
def test_search_space_is_mapped_from_the_version_not_loaded_nor_projected(tmp_path: Path, count: int) -> None:
    """The search-space rows are mapped read-only from ``search_space.npy`` (float16): what the build projected,
    within float16's rounding, without a float32 copy in memory; items stay Arrow columns."""
    raw = l2_normalize(np.random.default_rng(1).normal(size=(count, 32)).astype(np.float32))
    write_vectors(tmp_path / index_store.EMBEDDINGS, [raw], raw.shape)
    index_store.write_items(tmp_path / index_store.ITEMS, [{"item_id": str(row)} for row in range(count)])
    stored = StoredVectors(tmp_path / index_store.EMBEDDINGS)
    whitening = PcaWhitening.fit(stored.rows(0, count), 16)
    (tmp_path / PROJECTION).write_bytes(whitening.to_bytes())
    converted = stored.search_space(whitening)
    index_store.write_search_space(tmp_path / index_store.SEARCH_SPACE, converted)
    params = choose_params(count)
    VectorIndex.build(converted, params).save(tmp_path)
    index = {"params": params.to_dict(), "projection": index_store.projection_record(tmp_path, whitening)}
    opened = index_store.open_index(tmp_path, index)
    assert isinstance(opened.embeddings, np.memmap) and not opened.embeddings.flags.writeable
    assert opened.embeddings.dtype == np.float16 and opened.embeddings.shape == converted.shape
    np.testing.assert_allclose(opened.embeddings, converted, atol=5e-4)
    assert opened.items.column("item_id").to_pylist()[:2] == ["0", "1"] and opened.projection.kind == "pca-whitening"
    found, _ = opened.vectors.search(converted[:3], 1)
    assert found[:, 0].tolist() == [0, 1, 2]


def test_a_version_without_its_search_space_file_maps_scanns_float32_rows(tmp_path: Path) -> None:
    """A version written before ``search_space.npy`` whose index re-ranks in float32 keeps the rows it was built on
    in ScaNN's ``dataset.npy``: mapped from there, bit for bit, rather than projected again."""
    raw = l2_normalize(np.random.default_rng(3).normal(size=(300, 32)).astype(np.float32))
    write_vectors(tmp_path / index_store.EMBEDDINGS, [raw], raw.shape)
    index_store.write_items(tmp_path / index_store.ITEMS, [{"item_id": str(row)} for row in range(300)])
    converted = StoredVectors(tmp_path / index_store.EMBEDDINGS).search_space(IdentityProjection(32))
    params = choose_params(300)
    VectorIndex.build(converted, params).save(tmp_path)
    opened = index_store.open_index(tmp_path, {"params": params.to_dict()})
    assert isinstance(opened.embeddings.base, np.memmap) and np.array_equal(opened.embeddings, converted)


def test_saved_rows_of_another_shape_are_not_taken_for_the_vectors(tmp_path: Path) -> None:
    raw = l2_normalize(np.random.default_rng(2).normal(size=(300, 32)).astype(np.float32))
    write_vectors(tmp_path / index_store.EMBEDDINGS, [raw], raw.shape)
    index_store.write_items(tmp_path / index_store.ITEMS, [{"item_id": str(row)} for row in range(300)])
    params = choose_params(300)
    VectorIndex.build(PcaWhitening.fit(raw, 16).apply(raw), params).save(tmp_path)  # 16-d rows, no projection file
    opened = index_store.open_index(tmp_path, {"params": params.to_dict()})
    assert opened.embeddings.shape == (300, 32) and not isinstance(opened.embeddings.base, np.memmap)
    np.testing.assert_allclose(opened.embeddings, raw, atol=1e-3)


def test_rows_are_gathered_as_float32_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_store, "CHUNK_ROWS", 7)
    stored = np.random.default_rng(4).normal(size=(50, 6)).astype(np.float16)
    rows = np.array([3, 0, 49, 17, 17, 8, 21, 22, 40, 1, 2, 5, 6, 9, 10, 11])
    gathered = index_store.float32_rows(stored, rows)
    assert gathered.dtype == np.float32 and np.array_equal(gathered, stored[rows].astype(np.float32))
