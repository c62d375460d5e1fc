"""train_head learns a head that beats raw features on held-out items (synthetic clusters whose copies move along
nuisance directions), trains without categories, and refuses bad input with a clear ValueError."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from imagesearch.projection import LinearHead, PcaWhitening
from imagesearch.training.evaluation import Queries, compare
from imagesearch.training.head import HeadConfig, TrainedHead, choose, train_head

FAST = HeadConfig(whitening_dim=48, steps=150, batch_size=128, negatives=256, validation_database=2_000)
HELD_OUT = 300


class Catalog:
    """Items: a weak category signal (8 dims), an item identity (24 dims) and large nuisance directions (16 dims)
    that an item's copies move along: raw cosine confuses both near-duplicates and categories."""

    def __init__(self, items: int = 1_500, classes: int = 6, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        centres = self.rng.normal(size=(classes, 8))
        self.categories = self.rng.integers(0, classes, items).astype(np.int32)
        self.vectors = np.hstack([0.5 * centres[self.categories] + 0.3 * self.rng.normal(size=(items, 8)),
                                  0.6 * self.rng.normal(size=(items, 24)),
                                  1.5 * self.rng.normal(size=(items, 16))]).astype(np.float32)

    def copies(self, rows: np.ndarray) -> np.ndarray:
        moved = self.vectors[rows].copy()
        moved[:, 32:] += 1.5 * self.rng.normal(size=(len(rows), 16))
        moved[:, :32] += 0.15 * self.rng.normal(size=(len(rows), 32))
        return moved.astype(np.float32)

    def train(self, categories: bool = True, config: HeadConfig = FAST,
              cast: Callable[[np.ndarray], np.ndarray] = lambda vectors: vectors) -> TrainedHead:
        """A head trained on every item but the first HELD_OUT, two copies each."""
        rows = np.repeat(np.arange(HELD_OUT, len(self.vectors)), 2)
        return train_head(cast(self.vectors[HELD_OUT:]), self.categories[HELD_OUT:] if categories else None,
                          self.copies(rows), rows - HELD_OUT, config)

    def held_out_queries(self) -> Queries:
        rows = np.repeat(np.arange(HELD_OUT), 2)
        return Queries(self.copies(rows), rows, np.tile(["first", "second"], HELD_OUT), np.arange(HELD_OUT))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


@pytest.fixture(scope="module")
def trained(catalog: Catalog) -> TrainedHead:
    return catalog.train()


def test_the_head_beats_raw_features_and_whitening_on_items_it_never_saw(catalog: Catalog, trained: TrainedHead) -> None:
    whitening = PcaWhitening.fit(catalog.vectors, 48)
    scores = compare(trained.projection(), whitening, catalog.vectors, catalog.categories, catalog.held_out_queries())
    candidate, current, raw = scores["candidate"], scores["current"], scores["raw"]
    assert raw.near_dup_top1 < 0.95 and raw.category_p10 is not None and raw.category_p10 < 0.4
    assert candidate.near_dup_top1 >= max(raw.near_dup_top1, current.near_dup_top1)
    assert candidate.near_dup_worst > raw.near_dup_worst
    assert candidate.category_p10 is not None and current.category_p10 is not None
    assert candidate.category_p10 > max(raw.category_p10, current.category_p10) + 0.2


def test_the_trained_head_is_a_float32_linear_head_with_a_json_report(trained: TrainedHead) -> None:
    projection = trained.projection()
    assert isinstance(projection, LinearHead) and projection.in_dim == 48
    assert trained.mean.dtype == np.float32 and trained.weight.dtype == np.float32
    report = json.loads(json.dumps(trained.report))
    assert report["chosen"] in report["validation"] and {"raw", "whitening", "head"} <= set(report["validation"])
    assert report["seconds"]["total"] > 0 and report["peak_rss_bytes"] > 0 and report["categories"] == 6
    assert report["losses"]["final_fit"][-1] < report["losses"]["final_fit"][0]  # the loss went down


def test_without_categories_it_learns_invariance_and_is_never_worse_than_raw_on_near_duplicates(
        catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "embeddings.npy"  # stored as build_index stores them: float16, read memory-mapped

    def stored(vectors: np.ndarray) -> np.ndarray:
        np.save(path, vectors.astype(np.float16))
        return np.load(path, mmap_mode="r")

    head = catalog.train(categories=False, cast=stored)
    assert head.report["categories"] == 0
    assert all(found["category_p10"] is None for found in head.report["validation"].values())
    scores = compare(head.projection(), None, catalog.vectors, None, catalog.held_out_queries())
    assert scores["candidate"].near_dup_top1 >= scores["raw"].near_dup_top1 + 0.03
    assert scores["candidate"].category_p10 is None


def test_the_export_is_never_below_raw_or_whitening_on_near_duplicates() -> None:
    scores = {"raw": {"near_dup_top1": 0.90, "category_p10": 0.30},
              "whitening": {"near_dup_top1": 0.93, "category_p10": 0.35},
              "head": {"near_dup_top1": 0.92, "category_p10": 0.60},  # better categories, worse near-dups
              "whitening+head a=1": {"near_dup_top1": 0.93, "category_p10": 0.50}}
    assert choose(scores, 0.0) == "whitening+head a=1"
    assert choose(scores, 0.01) == "head"
    without = {name: {**found, "category_p10": None} for name, found in scores.items()}
    assert choose(without, 0.0) == "whitening"  # the first of equals: the simpler export


def bad_inputs(catalog: Catalog) -> dict[str, tuple[tuple[object, ...], str]]:
    vectors, categories = catalog.vectors[:200], catalog.categories[:200]
    rows = np.arange(20, dtype=np.int64)
    copies = catalog.copies(rows)
    with_nan = vectors.copy()
    with_nan[150, 3] = np.nan
    copies_inf = copies.copy()
    copies_inf[0, 0] = np.inf
    return {
        "nan in vectors": ((with_nan, categories, copies, rows), "not finite"),
        "inf in copies": ((vectors, categories, copies_inf, rows), "copies holds a value that is not finite"),
        "1-d vectors": ((vectors[0], categories, copies, rows), "2-d"),
        "float64 vectors": ((vectors.astype(np.float64), categories, copies, rows), "float16 or float32"),
        "copies of another width": ((vectors, categories, copies[:, :40], rows), "dimensions"),
        "a copy row per copy": ((vectors, categories, copies, rows[:10]), "one per copy"),
        "copy row out of range": ((vectors, categories, copies, rows + 190), "outside"),
        "float copy rows": ((vectors, categories, copies, rows.astype(np.float32)), "integers"),
        "categories of another length": ((vectors, categories[:100], copies, rows), "categories must be"),
        "categories below -1": ((vectors, categories - 3, copies, rows), "below -1"),
        "too few copied items": ((vectors, categories, copies[:4], rows[:4]), "at least 8"),
    }


@pytest.mark.parametrize("case", sorted(bad_inputs(Catalog(items=200))))
def test_bad_input_is_a_clear_value_error(case: str) -> None:
    arguments, message = bad_inputs(Catalog(items=200))[case]
    with pytest.raises(ValueError, match=message):
        train_head(*arguments, config=FAST)  # type: ignore[arg-type]


@pytest.mark.parametrize("setting", [{"steps": 0}, {"validation_fraction": 1.0}, {"mix_weights": ()},
                                     {"temperature": -1.0}, {"negatives": -5}])
def test_a_config_out_of_range_is_refused(setting: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="HeadConfig"):
        HeadConfig(**setting)  # type: ignore[arg-type]
