"""The contents of one index version directory, written by ``build-index`` and read by the server.

    items.parquet    item_id, title, category, price, on_sale, image_uri, image_sha256, updated_at and
                     image_stamp (what change detection compares; row = vector)
    embeddings.npy   (N, dim) float16 unit vectors, the raw embeddings (incremental reuse reads them)
    samples.npz      fitted images of a few items, the evaluation's near-duplicate queries (never refetched)
    whitening.npz    optional PCA-whitening learned on them; the index and every query are projected with it
    scann/           the serialized ScaNN searcher over the projected vectors (relative paths)
    manifest.json, _COMMIT
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch.artifacts import verify_directory
from imagesearch.errors import ArtifactError
from imagesearch.index import IndexParams, VectorIndex
from imagesearch.manifest import Manifest
from imagesearch.whitening import Whitening

ITEMS = "items.parquet"
EMBEDDINGS = "embeddings.npy"
WHITENING = "whitening.npz"
SAMPLES = "samples.npz"
# Raw embeddings are stored as float16: half the bytes of float32 (1M x 1280-d: 2.6 GB, not 5.1 GB) for a
# cosine error below 1e-3, far under the gaps that order neighbours. Every reader works in float32.
STORED_DTYPE = np.float16
ITEMS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()), ("title", pa.string()), ("category", pa.string()),
        ("price", pa.float64()), ("on_sale", pa.bool_()), ("image_uri", pa.string()),
        ("image_sha256", pa.string()), ("updated_at", pa.string()), ("image_stamp", pa.string()),
    ]
)
ITEM_COLUMNS = tuple(ITEMS_SCHEMA.names)
CHUNK_ROWS = 65_536  # rows converted at a time, so no full-size float32 copy of the raw vectors is made


def write_items(path: Path, records: list[dict[str, Any]]) -> None:
    columns = {name: [record.get(name) for record in records] for name in ITEM_COLUMNS}
    pq.write_table(pa.table(columns, schema=ITEMS_SCHEMA), path)


def read_items(path: Path) -> dict[str, list[Any]]:
    return pq.read_table(path).to_pydict()


def read_whitening(directory: Path) -> Whitening | None:
    path = directory / WHITENING
    return Whitening.from_bytes(path.read_bytes()) if path.exists() else None


def search_space(embeddings: np.ndarray, whitening: Whitening | None) -> np.ndarray:
    """Raw unit vectors -> the float32 vectors the index holds and queries are compared with."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    return whitening.apply(vectors) if whitening is not None else vectors


class StoredVectors:
    """A stored ``.npy`` matrix read in row ranges, each mapped only while it is used: reading a multi-GB file
    never keeps more than one chunk resident."""

    def __init__(self, path: Path) -> None:
        whole = np.load(path, mmap_mode="r", allow_pickle=False)
        if whole.ndim != 2:
            raise ValueError(f"{path} holds a {whole.ndim}-d array, not a matrix")
        self.path, self.shape, self.dtype, self.offset = path, whole.shape, whole.dtype, whole.offset
        del whole

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """Rows [start, stop) as ``dtype``: float32 to compute with, the stored dtype to copy them unconverted."""
        stop = min(stop, self.shape[0])
        if stop <= start:
            return np.zeros((0, self.shape[1]), dtype)
        view = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(stop - start, self.shape[1]),
                         offset=self.offset + start * self.shape[1] * self.dtype.itemsize)
        try:
            return np.array(view, dtype=dtype)
        finally:
            del view

    def take(self, rows: np.ndarray, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """The given rows (sorted ascending) as ``dtype``, read chunk by chunk."""
        result = np.empty((len(rows), self.shape[1]), dtype)
        done = 0
        while done < len(rows):
            first = int(rows[done])
            stop = int(np.searchsorted(rows, first + CHUNK_ROWS, side="left"))
            block = self.rows(first, int(rows[stop - 1]) + 1, dtype)
            result[done:stop] = block[rows[done:stop] - first]
            done = stop
        return result

    def search_space(self, whitening: Whitening | None) -> np.ndarray:
        """These vectors as the index holds them and queries are compared with, converted chunk by chunk."""
        dim = whitening.out_dim if whitening is not None else self.shape[1]
        result = np.empty((len(self), dim), np.float32)
        for start in range(0, len(self), CHUNK_ROWS):
            result[start : start + CHUNK_ROWS] = search_space(self.rows(start, start + CHUNK_ROWS), whitening)
        return result


def write_vectors(path: Path, chunks: Iterable[np.ndarray], shape: tuple[int, int]) -> None:
    """Write an ``.npy`` of ``shape`` in the stored dtype from row chunks, never holding it whole."""
    written = 0
    with path.open("wb") as handle:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(STORED_DTYPE)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        for chunk in chunks:
            handle.write(np.ascontiguousarray(chunk, dtype=STORED_DTYPE).data)
            written += len(chunk)
    if written != shape[0]:
        raise ValueError(f"wrote {written} rows to {path}, expected {shape[0]}")


@dataclass(frozen=True)
class SubIndex:
    """A search structure over some rows of a version: ``vectors`` row i is the version's row ``rows[i]``."""

    rows: np.ndarray
    vectors: VectorIndex


@dataclass
class LoadedIndex:
    """A verified, loaded version: what the server searches. ``embeddings`` are in search space."""

    manifest: Manifest
    items: dict[str, list[Any]]
    embeddings: np.ndarray
    vectors: VectorIndex
    whitening: Whitening | None
    row_of: dict[str, int]
    categories: np.ndarray
    prices: np.ndarray
    on_sale: np.ndarray
    # Built by the server after loading (serving/search.py): its own index for each category too large to search
    # exactly, so a category filter never needs an exact pass over a large subset.
    category_indexes: dict[str, SubIndex] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> int:
        return len(self.embeddings)

    def project(self, queries: np.ndarray) -> np.ndarray:
        """Raw query embeddings (from the embedder) -> search space."""
        return search_space(np.atleast_2d(queries), self.whitening)


@dataclass(frozen=True)
class OpenedIndex:
    """What a version directory holds for searching: its items, whitening, search-space vectors and searcher."""

    items: dict[str, list[Any]]
    whitening: Whitening | None
    embeddings: np.ndarray
    vectors: VectorIndex


def open_index(directory: Path, params: IndexParams) -> OpenedIndex:
    """Open a version directory's index, checked (``verify_directory``) or sealed by the caller.

    The search-space vectors are mapped read-only from the saved ScaNN index, which keeps the rows it was built
    on for re-ranking (at a million items, 2 GB neither whitened again nor held twice); an index without them
    gets the raw embeddings converted chunk by chunk."""
    items = read_items(directory / ITEMS)
    whitening = read_whitening(directory)
    raw = StoredVectors(directory / EMBEDDINGS)
    saved = VectorIndex.saved_vectors(directory, len(raw), whitening.out_dim if whitening is not None else raw.shape[1])
    embeddings = saved if saved is not None else raw.search_space(whitening)
    return OpenedIndex(items, whitening, embeddings, VectorIndex.load(directory, params, len(embeddings)))


def load_index(directory: Path, model_id: str | None = None, version: str | None = None) -> LoadedIndex:
    """Verify that the manifest lists exactly the files present, each one the project writes (never a pickle), with
    its checksum and content of its kind (never load an unverified or unlisted file), then load."""
    manifest = verify_directory(directory, model_id, version)
    if "params" not in manifest.index:
        raise ArtifactError(f"version {manifest.version} has no index (its manifest names no index parameters)")
    opened = open_index(directory, IndexParams(**manifest.index["params"]))
    items = opened.items
    return LoadedIndex(
        manifest=manifest,
        items=items,
        embeddings=opened.embeddings,
        vectors=opened.vectors,
        whitening=opened.whitening,
        row_of={item_id: row for row, item_id in enumerate(items["item_id"])},
        categories=np.asarray(items["category"], dtype=object),
        prices=np.asarray(items["price"], dtype=np.float64),
        on_sale=np.asarray(items["on_sale"], dtype=bool),
    )
