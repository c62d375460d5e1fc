"""The contents of one index version directory, written by ``build-index`` and read by the server.

    items.parquet    item_id, title, category, price, on_sale, image_uri, image_sha256 (row = vector)
    embeddings.npy   (N, dim) float32 unit vectors, the raw embeddings (incremental reuse reads them)
    whitening.npz    optional PCA-whitening learned on them; the index and every query are projected with it
    scann/           the serialized ScaNN searcher over the projected vectors (relative paths)
    manifest.json, _COMMIT
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch.artifacts import Manifest, verify_directory
from imagesearch.index import IndexParams, VectorIndex
from imagesearch.whitening import Whitening

ITEMS = "items.parquet"
EMBEDDINGS = "embeddings.npy"
WHITENING = "whitening.npz"
ITEM_COLUMNS = ("item_id", "title", "category", "price", "on_sale", "image_uri", "image_sha256")


def write_items(path: Path, records: list[dict[str, Any]]) -> None:
    columns = {name: [record[name] for record in records] for name in ITEM_COLUMNS}
    schema = pa.schema(
        [
            ("item_id", pa.string()), ("title", pa.string()), ("category", pa.string()),
            ("price", pa.float64()), ("on_sale", pa.bool_()), ("image_uri", pa.string()),
            ("image_sha256", pa.string()),
        ]
    )
    pq.write_table(pa.table(columns, schema=schema), path)


def read_items(path: Path) -> dict[str, list[Any]]:
    return pq.read_table(path).to_pydict()


def read_whitening(directory: Path) -> Whitening | None:
    path = directory / WHITENING
    return Whitening.from_bytes(path.read_bytes()) if path.exists() else None


def search_space(embeddings: np.ndarray, whitening: Whitening | None) -> np.ndarray:
    """Raw unit vectors -> the vectors the index holds and queries are compared with."""
    return whitening.apply(embeddings) if whitening is not None else embeddings


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


def load_index(directory: Path, model_id: str | None = None, version: str | None = None) -> LoadedIndex:
    """Verify that the manifest lists exactly the files present and every checksum (ScaNN may unpickle what it
    finds: never load an unverified or unlisted file), then load."""
    manifest = verify_directory(directory, model_id, version)
    items = read_items(directory / ITEMS)
    whitening = read_whitening(directory)
    embeddings = search_space(np.load(directory / EMBEDDINGS, allow_pickle=False), whitening)
    params = IndexParams(**manifest.index["params"])
    vectors = VectorIndex.load(directory, params, len(embeddings))
    return LoadedIndex(
        manifest=manifest,
        items=items,
        embeddings=embeddings,
        vectors=vectors,
        whitening=whitening,
        row_of={item_id: row for row, item_id in enumerate(items["item_id"])},
        categories=np.asarray(items["category"], dtype=object),
        prices=np.asarray(items["price"], dtype=np.float64),
        on_sale=np.asarray(items["on_sale"], dtype=bool),
    )
