"""The evaluation metrics of one version's index: recall@10 (ScaNN vs exact search), near-duplicate top-1 and
top-10 (transformed copies of stored sample images must find their original), category precision@10."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from imagesearch.augment import near_duplicate
from imagesearch.embedder import Embedder
from imagesearch.errors import ImageError
from imagesearch.index import VectorIndex, exact_search
from imagesearch.index_store import ITEMS, OpenedIndex, search_space
from imagesearch.preprocess import decode_image
from imagesearch.projection import Projection
from imagesearch.settings import Settings

log = logging.getLogger("evaluate")
K = 10


@dataclass(frozen=True)
class Scorable:
    """One version's index as the gate scores it: embeddings in search space, rows by item id."""

    version: str
    vectors: VectorIndex
    embeddings: np.ndarray
    projection: Projection
    item_ids: list[str]
    categories: list[str]

    @classmethod
    def of(cls, version: str, opened: OpenedIndex) -> Scorable:
        return cls(version, opened.vectors, opened.embeddings, opened.projection, opened.items["item_id"].to_pylist(),
                   [str(category) for category in opened.items["category"].to_pylist()])

    @property
    def row_of(self) -> dict[str, int]:
        return {item_id: row for row, item_id in enumerate(self.item_ids)}


def recall_at_k(index: VectorIndex, embeddings: np.ndarray, queries: np.ndarray, k: int = K, chunk: int = 64) -> float:
    """Recall of the index against exact search for the sampled queries (exact search a few queries at a time)."""
    found, _ = index.search(embeddings[queries], k)
    hits = 0
    for start in range(0, len(queries), chunk):
        truth, _ = exact_search(embeddings, embeddings[queries[start : start + chunk]], k)
        hits += sum(len(set(a) & set(b)) for a, b in zip(found[start : start + chunk].tolist(), truth.tolist(), strict=True))
    return hits / (len(queries) * min(k, len(embeddings)))


def category_precision_at_k(
    index: VectorIndex, embeddings: np.ndarray, categories: list[str], queries: np.ndarray, k: int = K
) -> float:
    found, _ = index.search(embeddings[queries], k + 1)
    precisions = []
    for query, row in zip(queries.tolist(), found.tolist(), strict=True):
        neighbours = [n for n in row if n != query][:k]
        precisions.append(sum(categories[n] == categories[query] for n in neighbours) / max(len(neighbours), 1))
    return float(np.mean(precisions))


def embed_copies(embedder: Embedder, samples: dict[str, bytes], settings: Settings) -> dict[str, np.ndarray]:
    """item id -> raw embedding of a near-duplicate copy of its stored sample image (never downloaded again)."""
    used, copies = [], []
    for item_id, data in samples.items():
        try:
            original = decode_image(data, embedder.config.preprocess.for_pipeline(settings))  # preprocess's caps
            copies.append(embedder.preprocess(near_duplicate(original)))
            used.append(item_id)
        except ImageError as exc:
            log.warning("near-duplicate sample %s skipped: %s", item_id, exc)
    vectors = embedder.embed_many(copies, settings.pipeline.embed_batch_size)
    return dict(zip(used, vectors, strict=True))


def score(version: Scorable, query_ids: list[str], copies: dict[str, np.ndarray]) -> dict[str, float]:
    """The metrics of ``version`` for the queries ``query_ids`` (items it holds) and their copies."""
    row_of = version.row_of
    rows = np.asarray([row_of[item_id] for item_id in query_ids], dtype=np.int64)
    metrics = {"recall_at_10": recall_at_k(version.vectors, version.embeddings, rows)}
    with_copy = [item_id for item_id in copies if item_id in row_of]  # the version's stored samples
    if with_copy:
        queries = search_space(np.stack([copies[item_id] for item_id in with_copy]), version.projection)
        found, _ = version.vectors.search(queries, K)
        expected = [row_of[item_id] for item_id in with_copy]
        metrics["near_duplicate_top1"] = float(np.mean([row[0] == e for row, e in zip(found.tolist(), expected, strict=True)]))
        metrics["near_duplicate_top10"] = float(np.mean([e in row for row, e in zip(found.tolist(), expected, strict=True)]))
    else:
        metrics["near_duplicate_top1"] = metrics["near_duplicate_top10"] = 0.0
    if len(set(version.categories)) > 1:
        metrics["category_precision_at_10"] = category_precision_at_k(version.vectors, version.embeddings,
                                                                      version.categories, rows)
    return {name: round(value, 4) for name, value in metrics.items()}


def without_near_duplicates(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if not name.startswith("near_duplicate_")}


def images_of(directory: Path) -> dict[str, str]:
    """item id -> image sha256 of a version folder's items (two columns read, not the whole table)."""
    items = pq.read_table(directory / ITEMS, columns=["item_id", "image_sha256"]).to_pydict()
    return dict(zip(items["item_id"], items["image_sha256"], strict=True))
