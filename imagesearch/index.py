"""ScaNN index: parameters chosen from the item count, build, search, save/load; exact search."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

SCANN_DIR = "scann"
SCANN_DATASET = "dataset.npy"  # ScaNN's own copy of the vectors it was built on
SCANN_ASSETS = "scann_assets.pbtxt"  # the list of the other files ScaNN wrote
UPSERT_BATCH = 1024  # vectors ScaNN's upsert adds per batch


@dataclass(frozen=True)
class IndexParams:
    kind: Literal["brute_force", "brute_force_int8", "tree_ah"]
    num_leaves: int = 0
    leaves_to_search: int = 0
    training_sample_size: int = 0
    dimensions_per_block: int = 2
    anisotropic_threshold: float = 0.2
    reorder: int = 0
    spherical: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_params(count: int, brute_force_below: int = 20_000) -> IndexParams:
    """Brute force for small indexes; otherwise a √N-leaf tree + anisotropic hashing + exact reorder."""
    if count < brute_force_below:
        return IndexParams(kind="brute_force")
    num_leaves = max(2, round(math.sqrt(count)))
    return IndexParams(
        kind="tree_ah",
        num_leaves=num_leaves,
        leaves_to_search=max(1, math.ceil(num_leaves * 0.05)),
        training_sample_size=min(count, 250_000),
        reorder=250,
    )


def exact_search(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by dot product (cosine for unit vectors): (indices, scores), best first.

    The top k of each row of scores are picked by ``torch.topk``: over a million scores it is about 18x faster
    here than numpy's single-threaded ``argpartition`` (evaluate's exact pass at a million items)."""
    import torch

    scores = np.ascontiguousarray(np.atleast_2d(queries) @ database.T, dtype=np.float32)
    top_scores, top = torch.from_numpy(scores).topk(min(k, len(database)), dim=1)
    return top.numpy().astype(np.int64), top_scores.numpy()


class VectorIndex:
    """A ScaNN searcher over unit vectors; neighbours are row numbers of the build matrix."""

    def __init__(self, searcher: Any, params: IndexParams, size: int) -> None:
        self.searcher = searcher
        self.params = params
        self.size = size

    @classmethod
    def build(cls, vectors: np.ndarray, params: IndexParams, default_k: int = 10) -> VectorIndex:
        import scann

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        builder = scann.scann_ops_pybind.builder(vectors, default_k, "dot_product")
        if params.kind == "brute_force":
            searcher = builder.score_brute_force().build()
        elif params.kind == "brute_force_int8":  # every row scored from int8 codes: a quarter of float32's memory
            searcher = builder.score_brute_force(quantize=True).build()
        else:
            searcher = (
                builder.tree(
                    num_leaves=params.num_leaves,
                    num_leaves_to_search=params.leaves_to_search,
                    training_sample_size=params.training_sample_size,
                    spherical=params.spherical,
                )
                .score_ah(params.dimensions_per_block, anisotropic_quantization_threshold=params.anisotropic_threshold)
                .reorder(params.reorder)
                .build()
            )
        return cls(searcher, params, len(vectors))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of shape (len(queries), min(k, size)), best first."""
        k = min(k, self.size)
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        kwargs: dict[str, int] = {"final_num_neighbors": k}
        if self.params.kind == "tree_ah":
            kwargs["pre_reorder_num_neighbors"] = max(self.params.reorder, k)
        if len(queries) == 1:
            indices, scores = self.searcher.search(queries[0], **kwargs)
            return np.asarray(indices, dtype=np.int64)[None, :], np.asarray(scores, dtype=np.float32)[None, :]
        indices, scores = self.searcher.search_batched(queries, **kwargs)
        return np.asarray(indices, dtype=np.int64), np.asarray(scores, dtype=np.float32)

    def update(self, delete: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Delete the rows ``delete`` and append ``vectors`` (unit float32), in place. Returns, per row afterwards,
        the row it was: a kept row's number before, or ``size + j`` (size before) for the j-th appended vector.

        ScaNN deletes a datapoint by moving its last one into its place. Deleting in descending order, each row is
        still at its own number when its turn comes, and that move is all there is to follow."""
        rows = np.unique(np.asarray(delete, dtype=np.int64))[::-1]
        if len(rows) and (rows[0] >= self.size or rows[-1] < 0):
            raise ValueError(f"rows to delete must lie in [0, {self.size}): got {rows[-1]}..{rows[0]}")
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        before = np.arange(self.size, dtype=np.int64)
        last = self.size - 1
        for row in rows.tolist():
            before[row] = before[last]
            last -= 1
        searcher = self.searcher.searcher  # the pybind object: row numbers, not ScannSearcher's pickled docids
        if len(rows):
            searcher.delete(rows.tolist())
        if len(vectors):
            searcher.upsert([None] * len(vectors), vectors, UPSERT_BATCH)
        if searcher.size() != last + 1 + len(vectors):
            raise RuntimeError(f"ScaNN holds {searcher.size()} datapoints after the update, expected "
                               f"{last + 1 + len(vectors)}")
        order = np.concatenate([before[: last + 1], np.arange(self.size, self.size + len(vectors), dtype=np.int64)])
        self.size = len(order)
        return order

    def health(self) -> dict[str, float]:
        """ScaNN's statistics of the index as it stands: ``avg_quantization_error`` and the partitions' relative
        imbalance (``partition_weighted_avg_relative_imbalance``: 0 when every leaf holds as many rows)."""
        self.searcher.initialize_health_stats()
        return {key: float(value) for key, value in self.searcher.get_health_stats().items()}

    def save(self, directory: Path) -> None:
        target = directory / SCANN_DIR
        target.mkdir(parents=True, exist_ok=True)
        # relative_path=True: the serialized assets must load from wherever the version is fetched to.
        self.searcher.serialize(str(target), relative_path=True)

    @staticmethod
    def saved_vectors(directory: Path, rows: int, dim: int) -> np.ndarray | None:
        """The float32 rows a saved index re-ranks with, as built, in order (ScaNN's ``dataset.npy``), mapped
        read-only: the search-space vectors without projecting them again into a second copy. None when the
        saved index holds no such matrix of ``rows`` x ``dim``."""
        path = directory / SCANN_DIR / SCANN_DATASET
        if not path.is_file():
            return None
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        if mapped.shape != (rows, dim) or mapped.dtype != np.float32:
            return None
        return np.asarray(mapped)

    @classmethod
    def load(cls, directory: Path, params: IndexParams, size: int) -> VectorIndex:
        """The searcher ScaNN serialized into ``directory``, built from its assets alone. Not through
        ``scann_ops_pybind.load_searcher``: that unpickles a ``scann_docids.pkl`` if one is there (rows are the
        ids here; nothing is ever unpickled) and writes a missing ``scann_assets.pbtxt`` into the version."""
        from scann.scann_ops.py import scann_ops_pybind

        target = directory / SCANN_DIR
        assets = (target / SCANN_ASSETS).read_text("utf-8")
        cwd = os.getcwd()
        try:
            os.chdir(target)  # relative asset paths resolve against the working directory
            searcher = scann_ops_pybind.ScannSearcher(scann_ops_pybind.scann_pybind.ScannNumpy(str(target), assets))
        finally:
            os.chdir(cwd)
        return cls(searcher, params, size)
