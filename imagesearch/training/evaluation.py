"""An honest evaluation of a head: items it never saw, copies made with parameters it never drew.

``held_out`` splits a catalog's items by a hash of their id (stable across runs and catalog orders: an item is
held out or not whatever else changes). ``compare`` scores the candidate, the current model and the raw
features on the same queries, by exact search:

    near-dup top-1   each evaluation copy (imagesearch.augment.EVALUATION_DISTORTIONS) of a held-out item must
                     find its original first among every database row; the mean is over transforms (each weighs
                     the same however many copies it has) and the worst is the lowest transform's
    category P@10    each held-out item with a category, among the database rows with a category (itself left
                     out): the share of its 10 nearest neighbours in its own category

Numpy and the exact search only (``imagesearch.index.exact_search``); the database is projected a chunk at a time,
so a memory-mapped million rows never becomes one float32 copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imagesearch.index import exact_search
from imagesearch.projection import IdentityProjection, Projection

K = 10
DATABASE_CHUNK = 16_384  # database rows projected and scored at a time
QUERY_CHUNK = 1_024  # queries scored at a time: at most QUERY_CHUNK x DATABASE_CHUNK float32 scores


def held_out(item_ids: Sequence[str], fraction: float, salt: str = "image-model") -> np.ndarray:
    """A boolean mask: True for the items of the held-out split (about ``fraction`` of them), chosen by a sha256 of
    ``salt`` and the item id alone."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held-out fraction must be between 0 and 1, not {fraction}")
    limit = int(fraction * 2**64)
    return np.fromiter((int.from_bytes(hashlib.sha256(f"{salt}\0{item_id}".encode()).digest()[:8], "big") < limit
                        for item_id in item_ids), dtype=bool, count=len(item_ids))


@dataclass(frozen=True)
class Queries:
    """The evaluation's queries over one database (rows of the raw ``database`` matrix ``compare`` is given)."""

    copies: np.ndarray  # (m, d) raw vectors of the evaluation copies
    copy_rows: np.ndarray  # (m,) int64: the database row of each copy's original
    transforms: np.ndarray  # (m,) str: the name of each copy's distortion
    category_rows: np.ndarray  # (q,) int64: database rows that are category queries (held-out, with a category)

    def check(self, database_rows: int, dim: int) -> None:
        copies = np.asarray(self.copies)
        if copies.ndim != 2 or copies.shape[1] != dim:
            raise ValueError(f"evaluation copies must be (m, {dim}), not {copies.shape}")
        for name, rows in (("copy_rows", self.copy_rows), ("category_rows", self.category_rows)):
            rows = np.asarray(rows)
            if rows.ndim != 1 or rows.dtype.kind not in "iu":
                raise ValueError(f"{name} must be a 1-d integer array, not {rows.dtype} {rows.shape}")
            if len(rows) and (rows.min() < 0 or rows.max() >= database_rows):
                raise ValueError(f"{name} holds a row outside the database's {database_rows}")
        if len(self.copy_rows) != len(copies) or len(self.transforms) != len(copies):
            raise ValueError(f"{len(copies)} copies but {len(self.copy_rows)} copy_rows and "
                             f"{len(self.transforms)} transforms")


@dataclass(frozen=True)
class Scores:
    """One model's scores on the evaluation's queries."""

    near_dup_top1: float  # mean over transforms
    near_dup_worst: float
    worst_transform: str
    per_transform: dict[str, float]
    category_p10: float | None  # None when there are no category queries
    near_dup_queries: int
    category_queries: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def nearest(projection: Projection, database: np.ndarray, queries: np.ndarray, k: int,
            rows: np.ndarray | None = None) -> np.ndarray:
    """The ``k`` nearest database rows (row numbers of ``database``, best first) of each projected query, by exact
    search in ``projection``'s space over ``rows`` (sorted; all rows when None)."""
    projected_queries = projection.apply(queries) if len(queries) else np.zeros((0, projection.out_dim), np.float32)
    candidates = np.arange(len(database)) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(k, len(candidates))
    best = np.full((len(queries), k), -1, np.int64)
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    for start in range(0, len(candidates), DATABASE_CHUNK):
        chunk = candidates[start : start + DATABASE_CHUNK]
        block = projection.apply(database[chunk[0] : chunk[-1] + 1][chunk - chunk[0]])
        for first in range(0, len(queries), QUERY_CHUNK):
            last = first + QUERY_CHUNK
            found, scores = exact_search(block, projected_queries[first:last], k)
            merged = np.concatenate([best_scores[first:last], scores], axis=1)
            rows_merged = np.concatenate([best[first:last], chunk[found]], axis=1)
            order = np.argsort(-merged, axis=1, kind="stable")[:, :k]
            best_scores[first:last] = np.take_along_axis(merged, order, axis=1)
            best[first:last] = np.take_along_axis(rows_merged, order, axis=1)
    return best


def score(projection: Projection, database: np.ndarray, categories: np.ndarray | None, queries: Queries,
          k: int = K) -> Scores:
    """``projection``'s near-dup top-1 and category P@k on ``queries`` over ``database`` (raw vectors)."""
    queries.check(len(database), database.shape[1])
    transforms = np.asarray(queries.transforms).astype(str)
    found = nearest(projection, database, np.asarray(queries.copies), 1)[:, 0] if len(transforms) else np.zeros(0)
    hits = found == np.asarray(queries.copy_rows)
    per_transform = {name: float(hits[transforms == name].mean()) for name in sorted(set(transforms.tolist()))}
    worst = min(per_transform, key=per_transform.__getitem__) if per_transform else ""
    precision = None
    category_rows = np.asarray(queries.category_rows, dtype=np.int64)
    if categories is not None and len(category_rows):
        categories = np.asarray(categories)
        if (categories[category_rows] < 0).any():
            raise ValueError("a category query has no category")
        labelled = np.flatnonzero(categories >= 0)
        neighbours = nearest(projection, database, database[np.sort(category_rows)], k + 1, labelled)
        query_rows = np.sort(category_rows)
        precisions = []
        for query, row in zip(query_rows.tolist(), neighbours.tolist(), strict=True):
            others = [n for n in row if n != query][:k]
            precisions.append(float(np.mean(categories[others] == categories[query])) if others else 0.0)
        precision = float(np.mean(precisions))
    return Scores(
        near_dup_top1=float(np.mean(list(per_transform.values()))) if per_transform else float("nan"),
        near_dup_worst=per_transform.get(worst, float("nan")), worst_transform=worst, per_transform=per_transform,
        category_p10=precision, near_dup_queries=len(transforms), category_queries=len(category_rows),
    )


def score_models(models: Mapping[str, Projection], database: np.ndarray, categories: np.ndarray | None,
                 queries: Queries, k: int = K) -> dict[str, Scores]:
    return {name: score(projection, database, categories, queries, k) for name, projection in models.items()}


def compare(candidate: Projection, current: Projection | None, database: np.ndarray, categories: np.ndarray | None,
            queries: Queries, k: int = K) -> dict[str, Scores]:
    """The candidate, the current model (when one is serving) and the raw features, on the same queries."""
    models: dict[str, Projection] = {"candidate": candidate}
    if current is not None:
        models["current"] = current
    models["raw"] = IdentityProjection(int(database.shape[1]))
    return score_models(models, database, categories, queries, k)
