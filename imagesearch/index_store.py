"""The contents of one index version directory, written by ``build-index`` and read by the server.

    items.parquet    item_id, title, category, price, on_sale, image_uri, image_sha256, updated_at and
                     image_stamp (what change detection compares; row = vector)
    embeddings.npy   (N, dim) float16 unit vectors, the raw embeddings (incremental reuse reads them)
    search_space.npy (N, out_dim) float16: the rows projected, as the index holds them; the server maps them (filtered
                     exact passes, /similar's query, category indexes) instead of loading or projecting anything
    samples.npz      fitted images of a few items, the evaluation's near-duplicate queries (never refetched)
    projection.npz   the projection (imagesearch.projection: identity, PCA-whitening or a learned head) the index
                     and every query are projected with; the manifest's ``index.projection`` records it. A version
                     published before projections holds ``whitening.npz`` (a PCA-whitening) or neither (identity)
    scann/           the serialized ScaNN searcher over the projected vectors (relative paths)
    manifest.json, _COMMIT
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from imagesearch.item_table import ItemTable
from imagesearch.manifest import Manifest, sha256_file
from imagesearch.projection import (
    LEGACY_WHITENING,
    PROJECTION,
    IdentityProjection,
    Projection,
    legacy_whitening_from_bytes,
    load_projection,
)

ITEMS = "items.parquet"
EMBEDDINGS = "embeddings.npy"
SEARCH_SPACE = "search_space.npy"
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


def projection_record(directory: Path, projection: Projection) -> dict[str, Any]:
    """What the manifest's ``index.projection`` says of the version's ``projection.npz`` (written already)."""
    return {**projection.describe(), "sha256": sha256_file(directory / PROJECTION)}


def read_projection(directory: Path, recorded: dict[str, Any] | None, dim: int) -> Projection:
    """The version's projection of ``dim``-d raw vectors: its ``projection.npz``, checked against what the manifest
    records (``recorded``: kind, dimensions, projection_id, sha256); a version published before projections gets its
    ``whitening.npz`` as PCA-whitening, or the identity."""
    path, legacy = directory / PROJECTION, directory / LEGACY_WHITENING
    if path.exists() and legacy.exists():
        raise ArtifactError(f"{directory} holds both {PROJECTION} and {LEGACY_WHITENING}")
    if path.exists():
        if not recorded:
            raise ArtifactError(f"{directory}/{PROJECTION} is not recorded in the manifest's index.projection")
        if sha256_file(path) != recorded.get("sha256"):
            raise ArtifactError(f"{PROJECTION} is not the file the manifest's index.projection records (sha256)")
        projection = load_projection(path)
        found = projection.describe()
        wrong = sorted(key for key, value in found.items() if recorded.get(key) != value)
        if wrong:
            raise ArtifactError(f"{PROJECTION} does not match the manifest's index.projection ({', '.join(wrong)}: "
                                f"{ {key: found[key] for key in wrong} } vs { {key: recorded.get(key) for key in wrong} })")
    elif recorded:
        raise ArtifactError(f"the manifest records a {recorded.get('kind')} projection but {directory} has no "
                            f"{PROJECTION}")
    elif legacy.exists():
        projection = legacy_whitening_from_bytes(legacy.read_bytes())
    else:
        projection = IdentityProjection(dim)
    if projection.in_dim != dim:
        raise ArtifactError(f"the version's projection takes {projection.in_dim}-d vectors, its embeddings are {dim}-d")
    return projection


def search_space(embeddings: np.ndarray, projection: Projection) -> np.ndarray:
    """Raw vectors (float16 or float32) -> the float32 unit vectors the index holds and queries are compared with."""
    return projection.apply(np.asarray(embeddings))


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

    def search_space(self, projection: Projection) -> np.ndarray:
        """These vectors as the index holds them and queries are compared with, projected chunk by chunk into one
        preallocated float32 array (read in the stored dtype: the projection converts each block)."""
        result = np.empty((len(self), projection.out_dim), np.float32)
        for start in range(0, len(self), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(self))
            projection.apply(self.rows(start, stop, self.dtype), out=result[start:stop])
        return result


def mapped_vectors(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The stored-dtype matrix of ``shape`` at ``path``, mapped read-only (pages are read as rows are used, and the
    kernel may drop them again); None when there is none of that shape."""
    if not path.is_file():
        return None
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    return mapped if mapped.shape == shape and mapped.dtype == STORED_DTYPE else None


def float32_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]`` as float32, gathered ``CHUNK_ROWS`` at a time: no full-size temporary of the stored dtype."""
    result = np.empty((len(rows), vectors.shape[1]), np.float32)
    for start in range(0, len(rows), CHUNK_ROWS):
        result[start : start + CHUNK_ROWS] = vectors[rows[start : start + CHUNK_ROWS]]
    return result


def write_search_space(path: Path, vectors: np.ndarray) -> None:
    """The search-space rows (float32, as the index is built on) stored as ``search_space.npy``."""
    write_vectors(path, (vectors[start : start + CHUNK_ROWS] for start in range(0, len(vectors), CHUNK_ROWS)),
                  vectors.shape)


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
    """A verified, loaded version: what the server searches. ``embeddings`` are in search space (mapped float16 rows
    of ``search_space.npy``, for a version that has it)."""

    manifest: Manifest
    items: ItemTable
    embeddings: np.ndarray
    vectors: VectorIndex
    projection: Projection
    row_of: Mapping[str, int]
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
        return search_space(np.atleast_2d(queries), self.projection)


@dataclass(frozen=True)
class OpenedIndex:
    """What a version directory holds for searching: its items, projection, search-space vectors and searcher."""

    items: pa.Table
    projection: Projection
    embeddings: np.ndarray
    vectors: VectorIndex


def open_index(directory: Path, index: dict[str, Any]) -> OpenedIndex:
    """Open a version directory's index, checked (``verify_directory``) or sealed by the caller; ``index`` is what its
    manifest (or the run's build record) says of it: ``params`` and ``projection``.

    The search-space vectors are mapped read-only from the version's ``search_space.npy`` (float16: at a million
    512-d items 1 GB, of which only the pages searches touch are read); a version written before it has them
    mapped from the saved ScaNN index's float32 rows when it keeps them, else gets the raw embeddings projected
    chunk by chunk."""
    if "params" not in index:
        raise ArtifactError(f"{directory} has no index (no index parameters are recorded)")
    items = pq.read_table(directory / ITEMS)
    raw = StoredVectors(directory / EMBEDDINGS)
    projection = read_projection(directory, index.get("projection"), raw.shape[1])
    embeddings = mapped_vectors(directory / SEARCH_SPACE, (len(raw), projection.out_dim))
    if embeddings is None:
        embeddings = VectorIndex.saved_vectors(directory, len(raw), projection.out_dim)
    if embeddings is None:
        embeddings = raw.search_space(projection)
    vectors = VectorIndex.load(directory, IndexParams(**index["params"]), len(embeddings))
    return OpenedIndex(items, projection, embeddings, vectors)


def load_index(directory: Path, model_id: str | None = None, version: str | None = None) -> LoadedIndex:
    """Verify that the manifest lists exactly the files present, each one the project writes (never a pickle), with
    its checksum and content of its kind (never load an unverified or unlisted file), then load."""
    manifest = verify_directory(directory, model_id, version)
    if "params" not in manifest.index:
        raise ArtifactError(f"version {manifest.version} has no index (its manifest names no index parameters)")
    opened = open_index(directory, manifest.index)
    items = ItemTable(opened.items)
    return LoadedIndex(
        manifest=manifest,
        items=items,
        embeddings=opened.embeddings,
        vectors=opened.vectors,
        projection=opened.projection,
        row_of=items.rows,
        categories=items.labels("category"),
        prices=items.numbers("price", np.float64),
        on_sale=items.numbers("on_sale", bool),
    )
