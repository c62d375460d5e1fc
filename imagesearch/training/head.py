"""Train a linear head on a catalog's stored raw backbone vectors: PCA-whitening ``W0``, then a learned square
matrix ``M`` on the whitened vectors, exported as one :class:`~imagesearch.projection.LinearHead`.

``M`` (initialised to the identity) is trained with two terms:

    invariance   InfoNCE between each item and an augmented copy of it (``copies``: the raw vectors of its
                 distorted images), the other items of the batch and random catalog rows as negatives
    categories   a proxy-softmax: one learned proxy per category, each item pulled to its own (only where
                 ``categories`` are known; a catalog without them trains on invariance alone)

The export is chosen on a validation split (items whose copies and categories training did not use): raw,
``W0``, ``W0 M``, ``[W0, a W0 M]`` or ``[centred raw, a W0 M]`` for each ``a`` of ``mix_weights``. Only an export
no worse than raw and ``W0`` on near-duplicates (less ``near_dup_tolerance``) can be chosen; among those the best
category P@10 wins (near-dup top-1 where there are no categories). Then ``M`` is trained again on every item and
exported the chosen way.

The raw vectors may be a memory-mapped float16 matrix of a million rows: they are read a batch of rows at a time
(the whitening's sample and each step's rows), never copied whole.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from imagesearch.projection import LinearHead, PcaWhitening, Projection
from imagesearch.training.evaluation import Queries, score

CHECK_ROWS = 65_536  # rows checked for finite values at a time


@dataclass(frozen=True)
class HeadConfig:
    """Every tunable of :func:`train_head` (defaults measured by bench/model.py: docs/BENCHMARKS.md)."""

    whitening_dim: int = 512  # W0's output dimensions (as today's PCA-whitening)
    shrinkage: float = 0.3  # W0's shrinkage (as today's)
    whitening_samples: int = 200_000  # rows W0 is fitted on
    steps: int = 600  # optimiser steps, each fitting (validation) and final run
    batch_size: int = 256  # item/copy pairs per step (and labelled items per step)
    negatives: int = 1_024  # random catalog rows added as InfoNCE negatives per step
    learning_rate: float = 2e-3
    temperature: float = 0.05  # InfoNCE
    category_temperature: float = 0.1  # proxy softmax
    category_weight: float = 1.0  # proxy-softmax loss weight against InfoNCE's 1
    identity_decay: float = 1e-3  # weight of ||M - I||^2
    mix_weights: tuple[float, ...] = (0.5, 1.0, 2.0)  # a in [W0, a W0 M] and [raw, a W0 M]
    validation_fraction: float = 0.2  # of the items with copies (and of labelled items)
    validation_max_items: int = 2_000  # at most this many validation items with copies, and labelled ones
    validation_database: int = 20_000  # validation searches this many rows (the validation items among them)
    near_dup_tolerance: float = 0.0  # how much below raw / W0 on near-dup an export may be and still be chosen
    min_copy_items: int = 8  # fewer distinct items with copies: a clear error, nothing to validate on
    threads: int = 1  # torch intra-op threads (0: torch's default); 1 is fastest for these small matrices on a shared CPU
    seed: int = 0

    def __post_init__(self) -> None:
        positive = {"whitening_dim": self.whitening_dim, "whitening_samples": self.whitening_samples,
                    "steps": self.steps, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                    "temperature": self.temperature, "category_temperature": self.category_temperature,
                    "validation_max_items": self.validation_max_items,
                    "validation_database": self.validation_database, "min_copy_items": self.min_copy_items}
        wrong = [f"{name}={value}" for name, value in positive.items() if not value > 0]
        if not 0.0 < self.validation_fraction < 1.0:
            wrong.append(f"validation_fraction={self.validation_fraction}")
        if min(self.negatives, self.category_weight, self.identity_decay, self.near_dup_tolerance, self.threads) < 0:
            wrong.append("negatives, category_weight, identity_decay, near_dup_tolerance and threads must be >= 0")
        if not self.mix_weights or min(self.mix_weights) <= 0:
            wrong.append(f"mix_weights={self.mix_weights}")
        if wrong:
            raise ValueError(f"HeadConfig: {', '.join(wrong)}")


@dataclass(frozen=True)
class TrainedHead:
    mean: np.ndarray  # (in_dim,) float32
    weight: np.ndarray  # (in_dim, out_dim) float32
    report: dict[str, Any] = field(default_factory=dict)  # JSON-able: chosen export, losses, seconds, peak RSS

    def projection(self) -> LinearHead:
        return LinearHead(mean=self.mean, weight=self.weight)


@dataclass(frozen=True)
class Inputs:
    """train_head's arguments, checked."""

    vectors: np.ndarray
    categories: np.ndarray | None  # dense labels 0..C-1, -1 unknown; None when there are none
    copies: np.ndarray
    copy_rows: np.ndarray
    classes: int


def check_inputs(vectors: np.ndarray, categories: np.ndarray | None, copies: np.ndarray, copy_rows: np.ndarray,
                 config: HeadConfig) -> Inputs:
    """ValueError naming what is wrong with the arguments (nothing is modified)."""
    for name, array in (("vectors", vectors), ("copies", copies)):
        if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype not in (np.float16, np.float32):
            raise ValueError(f"{name} must be a 2-d float16 or float32 array, not "
                             f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}")
    n, dim = vectors.shape
    if n < 2 or dim < 2:
        raise ValueError(f"vectors must have at least 2 rows and 2 dimensions, not {vectors.shape}")
    if copies.shape[1] != dim:
        raise ValueError(f"copies have {copies.shape[1]} dimensions, vectors {dim}")
    copy_rows = np.asarray(copy_rows)
    if copy_rows.shape != (len(copies),) or copy_rows.dtype.kind not in "iu":
        raise ValueError(f"copy_rows must be ({len(copies)},) integers (one per copy), not {copy_rows.dtype} "
                         f"{copy_rows.shape}")
    if len(copy_rows) and (copy_rows.min() < 0 or copy_rows.max() >= n):
        raise ValueError(f"copy_rows holds a row outside vectors' {n}")
    distinct = len(np.unique(copy_rows))
    if distinct < config.min_copy_items:
        raise ValueError(f"copies of {distinct} distinct items: at least {config.min_copy_items} are needed")
    for name, array in (("vectors", vectors), ("copies", copies)):
        for start in range(0, len(array), CHECK_ROWS):
            if not np.isfinite(np.asarray(array[start : start + CHECK_ROWS], dtype=np.float32)).all():
                raise ValueError(f"{name} holds a value that is not finite (NaN or infinite) in rows "
                                 f"{start}..{min(start + CHECK_ROWS, len(array)) - 1}")
    dense, classes = None, 0
    if categories is not None:
        categories = np.asarray(categories)
        if categories.shape != (n,) or categories.dtype.kind not in "iu":
            raise ValueError(f"categories must be ({n},) integers (-1: unknown), not {categories.dtype} "
                             f"{categories.shape}")
        if len(categories) and categories.min() < -1:
            raise ValueError("categories holds a value below -1 (-1 is unknown)")
        known = categories >= 0
        labels, dense_known = np.unique(categories[known], return_inverse=True)
        dense = np.full(n, -1, np.int64)
        dense[known] = dense_known
        classes = len(labels)
        if classes < 2:
            dense, classes = None, 0  # one category (or none known) supervises nothing
    return Inputs(vectors, dense, copies, copy_rows.astype(np.int64), classes)


@dataclass(frozen=True)
class Split:
    """Row numbers (of vectors) and copy numbers (of copies) used to fit, and the validation's."""

    fit_copies: np.ndarray
    fit_labelled: np.ndarray
    fit_rows: np.ndarray  # every row training may read (negatives are drawn from them)
    validation_items: np.ndarray  # items whose copies are the validation's near-dup queries
    validation_labelled: np.ndarray  # the validation's category queries


def split(inputs: Inputs, config: HeadConfig, rng: np.random.Generator) -> Split:
    n = len(inputs.vectors)
    copied = np.unique(inputs.copy_rows)
    count = min(config.validation_max_items, max(1, round(config.validation_fraction * len(copied))))
    validation_items = np.sort(rng.choice(copied, count, replace=False))
    held = np.zeros(n, bool)
    held[validation_items] = True
    validation_labelled = np.zeros(0, np.int64)
    if inputs.categories is not None:
        labelled = np.flatnonzero((inputs.categories >= 0) & ~held)
        count = min(config.validation_max_items, round(config.validation_fraction * len(labelled)))
        validation_labelled = np.sort(rng.choice(labelled, count, replace=False)) if count else validation_labelled
        held[validation_labelled] = True
        validation_labelled = np.union1d(validation_labelled, validation_items[inputs.categories[validation_items] >= 0])
    fit_labelled = (np.flatnonzero((inputs.categories >= 0) & ~held) if inputs.categories is not None
                    else np.zeros(0, np.int64))
    return Split(np.flatnonzero(~held[inputs.copy_rows]), fit_labelled, np.flatnonzero(~held), validation_items,
                 validation_labelled)


def everything(inputs: Inputs) -> Split:
    """The final run's split: every row and copy fits."""
    labelled = np.flatnonzero(inputs.categories >= 0) if inputs.categories is not None else np.zeros(0, np.int64)
    empty = np.zeros(0, np.int64)
    return Split(np.arange(len(inputs.copies)), labelled, np.arange(len(inputs.vectors)), empty, empty)


def gather(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a (possibly memory-mapped, float16) matrix as float32, read in ascending order."""
    order = np.argsort(rows, kind="stable")
    result = np.empty((len(rows), array.shape[1]), np.float32)
    result[order] = array[rows[order]]
    return result


def fit_matrix(inputs: Inputs, whitening: PcaWhitening, part: Split, config: HeadConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """M (whitening_dim x whitening_dim) trained on ``part``; the mean loss of each tenth of the steps (torch runs
    with ``config.threads`` threads meanwhile, and with the caller's number again after)."""
    import torch

    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _fit_matrix(inputs, whitening, part, config, rng)
    finally:
        torch.set_num_threads(threads)


def _fit_matrix(inputs: Inputs, whitening: PcaWhitening, part: Split, config: HeadConfig,
                rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    import torch
    import torch.nn.functional as functional

    torch.manual_seed(int(rng.integers(2**31)))
    dim = whitening.out_dim
    mean = torch.from_numpy(np.array(whitening.mean))
    weight = torch.from_numpy(np.array(whitening.weight))
    matrix = torch.eye(dim, requires_grad=True)
    parameters = [matrix]
    proxies = None
    if inputs.categories is not None and len(part.fit_labelled):
        proxies = (0.1 * torch.randn(inputs.classes, dim)).requires_grad_()
        parameters.append(proxies)
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate)
    identity = torch.eye(dim)

    def project(rows: np.ndarray, source: np.ndarray) -> torch.Tensor:
        whitened = (torch.from_numpy(gather(source, rows)) - mean) @ weight
        return functional.normalize(functional.normalize(whitened, dim=1) @ matrix, dim=1)

    labels = torch.from_numpy(inputs.categories) if inputs.categories is not None else None
    losses: list[float] = []
    for _ in range(config.steps):
        # One copy each of distinct items: two copies of one item in a batch would be each other's negatives.
        picks = rng.choice(part.fit_copies, min(config.batch_size * 2, len(part.fit_copies)), replace=False)
        _, first = np.unique(inputs.copy_rows[picks], return_index=True)
        picks = picks[np.sort(first)][: config.batch_size]
        items = inputs.copy_rows[picks]
        anchors, positives = project(items, inputs.vectors), project(picks, inputs.copies)
        candidates = anchors
        if config.negatives:
            negatives = rng.choice(part.fit_rows, min(config.negatives, len(part.fit_rows)), replace=False)
            negatives = negatives[~np.isin(negatives, items)]
            candidates = torch.cat([anchors, project(negatives, inputs.vectors)])
        target = torch.arange(len(items))
        loss = 0.5 * (functional.cross_entropy(positives @ candidates.T / config.temperature, target)
                      + functional.cross_entropy(anchors @ positives.T / config.temperature, target))
        if proxies is not None and labels is not None:
            labelled = rng.choice(part.fit_labelled, min(config.batch_size, len(part.fit_labelled)), replace=False)
            logits = project(labelled, inputs.vectors) @ functional.normalize(proxies, dim=1).T
            loss = loss + config.category_weight * functional.cross_entropy(
                logits / config.category_temperature, labels[torch.from_numpy(labelled)])
        loss = loss + config.identity_decay * ((matrix - identity) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    tenths = np.array_split(np.asarray(losses), min(10, len(losses)))
    return matrix.detach().numpy().astype(np.float32), [round(float(chunk.mean()), 4) for chunk in tenths]


def median_norm(projection: Callable[[np.ndarray], np.ndarray], sample: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(projection(sample), axis=1))) or 1.0


def exports(whitening: PcaWhitening, matrix: np.ndarray, sample: np.ndarray,
            mix_weights: tuple[float, ...]) -> dict[str, LinearHead]:
    """The candidate exports. In a joined one each part is first scaled to a median norm of 1 on ``sample`` (raw
    rows), so ``a`` weighs the head part against the other whatever their scales."""
    dim = whitening.in_dim
    mean = np.asarray(whitening.mean, np.float32)
    w0 = np.asarray(whitening.weight, np.float32)
    head = w0 @ matrix
    centred = np.asarray(sample, np.float32) - mean
    unit = {"raw": 1.0 / median_norm(lambda rows: rows, centred), "whitening": 1.0 / median_norm(lambda rows: rows @ w0,
            centred), "head": 1.0 / median_norm(lambda rows: rows @ head, centred)}
    found = {
        "raw": LinearHead(mean=np.zeros(dim, np.float32), weight=np.eye(dim, dtype=np.float32)),
        "whitening": LinearHead(mean=mean, weight=w0),
        "head": LinearHead(mean=mean, weight=head.astype(np.float32)),
    }
    for a in mix_weights:
        scaled = (a * unit["head"]) * head
        found[f"whitening+head a={a:g}"] = LinearHead(
            mean=mean, weight=np.hstack([unit["whitening"] * w0, scaled]).astype(np.float32))
        found[f"raw+head a={a:g}"] = LinearHead(
            mean=mean, weight=np.hstack([unit["raw"] * np.eye(dim, dtype=np.float32), scaled]).astype(np.float32))
    return found


def choose(scores: dict[str, dict[str, Any]], tolerance: float) -> str:
    """The export to keep: never below raw or W0 on near-dup (less ``tolerance``), then the best category P@10 (or
    near-dup top-1 without categories), near-dup top-1 breaking ties; fewest dimensions last (the dict's order)."""
    floor = max(scores["raw"]["near_dup_top1"], scores["whitening"]["near_dup_top1"]) - tolerance
    eligible = [name for name, found in scores.items() if found["near_dup_top1"] >= floor]

    def merit(name: str) -> tuple[float, float]:
        found = scores[name]
        precision = found["category_p10"]
        return (found["near_dup_top1"], 0.0) if precision is None else (precision, found["near_dup_top1"])

    return max(eligible, key=merit)  # max keeps the first of equals: the simpler export


def validation_queries(inputs: Inputs, part: Split, config: HeadConfig,
                       rng: np.random.Generator) -> tuple[np.ndarray, Queries]:
    """The validation's database rows (its items among random others) and its queries, renumbered into them."""
    others = np.setdiff1d(part.fit_rows, np.union1d(part.validation_items, part.validation_labelled))
    wanted = np.union1d(part.validation_items, part.validation_labelled)
    room = max(0, config.validation_database - len(wanted))
    rows = np.union1d(wanted, rng.choice(others, min(room, len(others)), replace=False))
    copies = np.flatnonzero(np.isin(inputs.copy_rows, part.validation_items))
    return rows, Queries(copies=gather(inputs.copies, copies),
                         copy_rows=np.searchsorted(rows, inputs.copy_rows[copies]),
                         transforms=np.full(len(copies), "training copies"),
                         category_rows=np.searchsorted(rows, part.validation_labelled))


def peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def train_head(vectors: np.ndarray, categories: np.ndarray | None, copies: np.ndarray, copy_rows: np.ndarray,
               config: HeadConfig = HeadConfig()) -> TrainedHead:
    """A head for these raw vectors (see the module's docstring); ValueError on bad input."""
    started = time.monotonic()
    inputs = check_inputs(vectors, categories, copies, copy_rows, config)
    rng = np.random.default_rng(config.seed)
    whitening = PcaWhitening.fit(vectors, config.whitening_dim, config.shrinkage, config.whitening_samples,
                                 config.seed)
    whitened_at = time.monotonic()
    part = split(inputs, config, rng)
    matrix, fit_losses = fit_matrix(inputs, whitening, part, config, rng)
    rows, queries = validation_queries(inputs, part, config, rng)
    database = gather(vectors, rows)
    labels = inputs.categories[rows] if inputs.categories is not None else None
    candidates = exports(whitening, matrix, database[: min(len(database), 4_096)], config.mix_weights)
    validation = {name: score(head, database, labels, queries).as_dict() for name, head in candidates.items()}
    chosen = choose(validation, config.near_dup_tolerance)
    validated_at = time.monotonic()
    final_matrix, final_losses = fit_matrix(inputs, whitening, everything(inputs), config, rng)
    sample = gather(vectors, np.sort(rng.choice(len(vectors), min(len(vectors), 4_096), replace=False)))
    head: Projection = exports(whitening, final_matrix, sample, config.mix_weights)[chosen]
    assert isinstance(head, LinearHead)
    report = {
        "chosen": chosen,
        "validation": validation,
        "validation_items": {"near_dup": len(part.validation_items), "category": len(part.validation_labelled),
                             "database": len(rows)},
        "items": len(vectors), "copies": len(copies), "categories": inputs.classes,
        "in_dim": head.in_dim, "out_dim": head.out_dim,
        "losses": {"validation_fit": fit_losses, "final_fit": final_losses},
        "seconds": {"whitening": round(whitened_at - started, 2), "validation": round(validated_at - whitened_at, 2),
                    "final_fit": round(time.monotonic() - validated_at, 2),
                    "total": round(time.monotonic() - started, 2)},
        "peak_rss_bytes": peak_rss_bytes(),
        "config": {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()},
    }
    return TrainedHead(mean=np.array(head.mean), weight=np.array(head.weight), report=report)
