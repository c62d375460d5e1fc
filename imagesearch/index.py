"""ScaNN index: parameters chosen from the item count, build, search, save/load; exact search."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from imagesearch.errors import ArtifactError

SCANN_DIR = "scann"
SCANN_DATASET = "dataset.npy"  # ScaNN's own copy of the vectors it was built on
SCANN_ASSETS = "scann_assets.pbtxt"  # the list of the other files ScaNN wrote
UPSERT_BATCH = 1024  # vectors ScaNN's upsert adds per batch
# What the tree + AH index re-scores its candidates with: float32 rows (4 bytes a dimension), bfloat16 (2) or int8
# codes with per-dimension multipliers (1). bench/index.py measures each; docs/BENCHMARKS.md has the figures.
ReorderDtype = Literal["float32", "bfloat16", "int8"]
REORDER_DTYPES: tuple[str, ...] = get_args(ReorderDtype)
EXACT_BLOCK_ROWS = 65_536


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
    reorder_dtype: ReorderDtype = "float32"  # a version recorded before this field re-ranked in float32
    soar_lambda: float | None = None  # SOAR: each row also spilled to a second leaf (None: no spilling)

    def __post_init__(self) -> None:
        """Parameters come from a manifest too: refuse what ScaNN would misread, with a clear reason."""
        if self.reorder_dtype not in REORDER_DTYPES:
            raise ArtifactError(f"reorder_dtype {self.reorder_dtype!r} is not one of {', '.join(REORDER_DTYPES)}")
        if self.soar_lambda is not None and (isinstance(self.soar_lambda, bool) or not isinstance(self.soar_lambda, int | float)
                                             or not self.soar_lambda > 0):
            raise ArtifactError(f"soar_lambda {self.soar_lambda!r} is not a positive number (or null: no spilling)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_params(count: int, brute_force_below: int = 20_000, reorder_dtype: ReorderDtype = "int8",
                  soar_lambda: float | None = None) -> IndexParams:
    """Brute force for small indexes; otherwise a √N-leaf tree + anisotropic hashing, its candidates re-scored in
    ``reorder_dtype`` (int8 by default: a quarter of float32's memory at recall@10 over 0.95, bench/index.py)."""
    if count < brute_force_below:
        return IndexParams(kind="brute_force")
    num_leaves = max(2, round(math.sqrt(count)))
    return IndexParams(
        kind="tree_ah",
        num_leaves=num_leaves,
        leaves_to_search=max(1, math.ceil(num_leaves * 0.05)),
        training_sample_size=min(count, 250_000),
        reorder=250,
        reorder_dtype=reorder_dtype,
        soar_lambda=soar_lambda,
    )


def exact_search(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by dot product (cosine for unit vectors): (indices, scores), best first. ``database``: float32, or the
    stored float16 rows (e.g. a version's mapped ``search_space.npy``), scored in float32.

    The top k of each row of scores are picked by ``torch.topk``: over a million scores it is about 18x faster
    here than numpy's single-threaded ``argpartition`` (evaluate's exact pass at a million items)."""
    import torch

    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if database.dtype == np.float32:
        scores = np.ascontiguousarray(queries @ database.T, dtype=np.float32)
    else:  # stored float16 rows: converted a block at a time, never into a full float32 copy
        scores = np.empty((len(queries), len(database)), np.float32)
        for start in range(0, len(database), EXACT_BLOCK_ROWS):
            block = np.asarray(database[start : start + EXACT_BLOCK_ROWS], dtype=np.float32)
            np.matmul(queries, block.T, out=scores[:, start : start + len(block)])
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
        from scann.scann_ops.py.scann_builder import ReorderType

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
                    soar_lambda=params.soar_lambda,
                )
                .score_ah(params.dimensions_per_block, anisotropic_quantization_threshold=params.anisotropic_threshold)
                .reorder(params.reorder, quantize=ReorderType[params.reorder_dtype.upper()])
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

    @staticmethod
    def saved_rows(directory: Path, rows: np.ndarray, dim: int) -> np.ndarray | None:
        """``rows`` of the re-ranking matrix a saved tree index holds, decoded to float32: float32 ``dataset.npy``,
        ``bfloat16_dataset.npy`` (the high half of each float32) or ``int8_dataset.npy`` with its per-dimension
        ``int8_multipliers.npy`` (value = code / multiplier; ScaNN clips a row upserted later to the codes' range).
        None when the saved index holds no such matrix of ``dim`` columns."""
        target = directory / SCANN_DIR
        if (target / SCANN_DATASET).is_file():
            mapped = np.load(target / SCANN_DATASET, mmap_mode="r", allow_pickle=False)
            if mapped.ndim == 2 and mapped.shape[1] == dim and mapped.dtype == np.float32:
                return np.asarray(mapped[rows])
        if (target / "bfloat16_dataset.npy").is_file():
            mapped = np.load(target / "bfloat16_dataset.npy", mmap_mode="r", allow_pickle=False)
            if mapped.ndim == 2 and mapped.shape[1] == dim and mapped.dtype == np.int16:
                return (np.asarray(mapped[rows]).astype(np.int32) << 16).astype(np.uint32).view(np.float32)
        if (target / "int8_dataset.npy").is_file() and (target / "int8_multipliers.npy").is_file():
            codes = np.load(target / "int8_dataset.npy", mmap_mode="r", allow_pickle=False)
            multipliers = np.load(target / "int8_multipliers.npy", allow_pickle=False)
            if codes.ndim == 2 and codes.shape[1] == dim and codes.dtype == np.int8 and multipliers.shape == (dim,):
                return np.asarray(codes[rows]).astype(np.float32) / multipliers.astype(np.float32)
        return None

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
