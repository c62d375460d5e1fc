"""An hourly run's index in proportion to change: the previous version's ScaNN index, updated (the rows of removed
and changed items deleted, the new vectors upserted), written as the new version; else one built in full.

It is built in full when there is no previous index to update (no previous version, ``full_rebuild``, another
model), when the projection or the index parameters change (the count crossing into another choice included), when
more than ``IMAGESEARCH_INDEX_UPDATE_MAX_CHANGED`` of the items the index was last built in full with have changed
since (drift), or when, after the update, ScaNN's own statistics say its tree has grown unbalanced or its codes
fit the data worse than at that build by more than the settings allow. The manifest's ``index.lineage`` records
which, and carries the counts and statistics forward to the next run.

The previous version is never modified: its files are read (verified against its manifest, checked for their kind,
never unpickled) and the updated index is serialized into the new version. ScaNN moves rows when it deletes, so the
new version's items and embeddings are written in the updated index's row order (a row is still an item).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from imagesearch.errors import ArtifactError
from imagesearch.index import SCANN_DIR, IndexParams, VectorIndex
from imagesearch.index_store import STORED_DTYPE, read_projection
from imagesearch.manifest import Manifest
from imagesearch.projection import PROJECTION, Projection
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from imagesearch.version_files import check_content
from tasks.assembly import Assembly
from tasks.previous import verified_file
from tasks.projection_choice import learned_kind
from tasks.unchanged import same_projection

log = logging.getLogger("build_index")

# What may differ between the previous index's parameters and those chosen for this count without a full build:
# the tree keeps its leaves while the count stays within LEAF_RANGE of what they were chosen for.
COUNT_PARAMS = frozenset({"num_leaves", "leaves_to_search", "training_sample_size"})
LEAF_RANGE = 2.0
IMBALANCE = "partition_weighted_avg_relative_imbalance"
ERROR = "avg_quantization_error"
CHECKED_ROWS = 1024  # rows of the updated index compared with the stored vectors, beside every row that moved
# How far a saved row may lie from its unit vector: int8 codes are off by up to ~0.02 at 512-d (more where ScaNN
# clips an upserted row), bfloat16 by ~0.004; another item's vector lies ~1.4 away unless it is a near-copy.
ROW_TOLERANCE = 0.1


@dataclass(frozen=True)
class Changes:
    """What the update does to the previous index: ``delete`` its rows no longer held as they were; append the
    vectors of the assembly's rows ``append``; ``position_of`` gives a kept previous row's assembly row (else -1)."""

    delete: np.ndarray
    append: np.ndarray
    position_of: np.ndarray

    @property
    def count(self) -> int:
        return len(self.delete) + len(self.append)


@dataclass
class Update:
    """The updated index, the projection and parameters it keeps, the assembly in its row order, per row the
    row it was (:meth:`VectorIndex.update`), and its ``index.lineage``."""

    index: VectorIndex
    projection: Projection
    params: IndexParams
    assembly: Assembly
    order: np.ndarray
    lineage: dict[str, Any]


def changes(assembly: Assembly, previous_count: int) -> Changes:
    kept = assembly.fresh_rows < 0  # a reused vector: its previous row stays as it is
    position_of = np.full(previous_count, -1, np.int64)
    position_of[assembly.previous_rows[kept]] = np.nonzero(kept)[0]
    return Changes(np.nonzero(position_of < 0)[0], np.nonzero(~kept)[0], position_of)


def lineage_of(manifest: Manifest) -> dict[str, Any] | None:
    """The version's ``index.lineage``; None when it has none of the shape this module writes."""
    lineage = manifest.index.get("lineage")
    if not isinstance(lineage, dict):
        return None
    counts = all(isinstance(lineage.get(key), int) for key in ("items_at_build", "changed_since_build"))
    health = lineage.get("health_at_build")
    numbers = isinstance(health, dict) and all(isinstance(value, int | float) for value in health.values())
    return lineage if counts and numbers else None


def full_lineage(version: str, count: int, index: VectorIndex, reason: str) -> dict[str, Any]:
    """``index.lineage`` of an index built in full by this run's ``version``, and why."""
    health = index.health() if index.params.kind == "tree_ah" else {}
    return {"built": "full", "reason": reason, "base_version": version, "items_at_build": count,
            "changed_since_build": 0, "health_at_build": health, "health": health}


def why_full(manifest: Manifest, model_id: str, params: IndexParams, given: Projection | None,
             change: Changes, count: int, settings: Settings) -> str:
    """Why the previous version's index is not updated but built anew ("" when it is updated)."""
    recorded = manifest.index.get("params")
    if manifest.model.model_id != model_id:
        return f"the previous version was built with model {manifest.model.model_id}"
    if not isinstance(recorded, dict) or recorded.get("kind") != "tree_ah" or params.kind != "tree_ah":
        return f"only a tree index is updated ({params.kind} chosen for {count} items; the previous one is "\
               f"{recorded.get('kind') if isinstance(recorded, dict) else None})"
    chosen = params.to_dict()
    differ = sorted(key for key in chosen.keys() | recorded.keys()
                    if key not in COUNT_PARAMS and chosen.get(key) != recorded.get(key))
    if differ:
        return f"the index parameters change ({', '.join(differ)})"
    leaves = int(recorded.get("num_leaves", 0))
    if not leaves / LEAF_RANGE <= params.num_leaves <= leaves * LEAF_RANGE:
        return f"{count} items want {params.num_leaves} leaves, the previous index has {leaves}"
    projection = manifest.index.get("projection")
    if not isinstance(projection, dict):
        return "the previous version records no projection"
    planned = given.describe() if given is not None else None
    if not same_projection(projection, planned):
        return "the projection changes"
    if given is None and projection.get("kind") != learned_kind(count, settings):
        return f"{count} items learn a {learned_kind(count, settings)} projection, the previous one is " \
               f"{projection.get('kind')}"
    lineage = lineage_of(manifest)
    if lineage is None:
        return "the previous version records no index lineage"
    changed = int(lineage["changed_since_build"]) + change.count
    share = changed / max(1, int(lineage["items_at_build"]))
    if share > settings.pipeline.index_update_max_changed:
        return (f"{changed} items changed since the index was built in full with {lineage['items_at_build']} "
                f"({share:.1%} > IMAGESEARCH_INDEX_UPDATE_MAX_CHANGED {settings.pipeline.index_update_max_changed:.1%})")
    return ""


def why_unhealthy(health: dict[str, float], at_build: dict[str, float], settings: Settings) -> str:
    """Why an updated index is dropped for one built in full ("" when it is kept), from ScaNN's statistics now
    and at the last full build."""
    pipeline = settings.pipeline
    grown = health.get(IMBALANCE, 0.0) - at_build.get(IMBALANCE, 0.0)
    if grown > pipeline.index_update_max_imbalance_growth:
        return (f"the tree's weighted relative imbalance grew by {grown:.3f} since the full build "
                f"(> IMAGESEARCH_INDEX_UPDATE_MAX_IMBALANCE_GROWTH {pipeline.index_update_max_imbalance_growth})")
    base = at_build.get(ERROR, 0.0)
    worse = health.get(ERROR, 0.0) / base - 1 if base > 0 else 0.0
    if worse > pipeline.index_update_max_error_growth:
        return (f"the average quantization error grew by {worse:.1%} since the full build "
                f"(> IMAGESEARCH_INDEX_UPDATE_MAX_ERROR_GROWTH {pipeline.index_update_max_error_growth:.1%})")
    return ""


def open_previous(repo: ModelRepository, manifest: Manifest, scratch: Path) -> tuple[VectorIndex, Projection]:
    """The previous version's searcher and projection from its files, each verified against its manifest and
    checked for its kind (never a pickle) before ScaNN reads it from ``scratch``."""
    names = [entry.path for entry in manifest.files if entry.path.startswith(f"{SCANN_DIR}/")]
    target = scratch / SCANN_DIR
    target.mkdir(parents=True)
    with ExitStack() as stack:
        for name in [*names, PROJECTION]:
            path = stack.enter_context(verified_file(repo, manifest, name))
            (scratch / name).symlink_to(path.resolve())
            check_content(scratch, name)
        projection = read_projection(scratch, manifest.index.get("projection"), manifest.model.dim)
        index = VectorIndex.load(scratch, IndexParams(**manifest.index["params"]), manifest.item_count)
    for name in names:
        os.unlink(scratch / name)
    return index, projection


def attempt(previous: tuple[ModelRepository, Manifest] | None, assembly: Assembly, model_id: str, params: IndexParams,
            given: Projection | None, settings: Settings, scratch_dir: Callable[[], AbstractContextManager[Path]],
            no_previous: str) -> tuple[Update | None, str]:
    """The previous version's index updated to the assembly's items and "", or None and why it is built in full
    (``no_previous``: why the run has no previous version, when it has none)."""
    if previous is None:
        return None, no_previous or "no previous version"
    change = changes(assembly, previous[1].item_count)
    if why := why_full(previous[1], model_id, params, given, change, assembly.items.num_rows, settings):
        return None, why
    with scratch_dir() as opened:
        result = update(*previous, assembly, change, settings, opened)
    return (result, "") if isinstance(result, Update) else (None, result)


def update(repo: ModelRepository, manifest: Manifest, assembly: Assembly, change: Changes, settings: Settings,
           scratch: Path) -> Update | str:
    """The previous index updated to the assembly's items, or why it is built in full instead."""
    try:
        index, projection = open_previous(repo, manifest, scratch)
    except (ArtifactError, RuntimeError, ValueError) as exc:
        return f"the previous version's index cannot be opened ({exc})"
    lineage = lineage_of(manifest)
    assert lineage is not None  # why_full said so
    fresh = assembly.fresh[assembly.fresh_rows[change.append]].astype(STORED_DTYPE)  # as embeddings.npy holds them
    try:
        order = index.update(change.delete, projection.apply(fresh))
    except (RuntimeError, ValueError) as exc:
        return f"ScaNN could not update the previous index ({exc})"
    health = index.health()
    if why := why_unhealthy(health, lineage["health_at_build"], settings):
        return why
    positions = np.empty(len(order), np.int64)
    old = order < len(change.position_of)
    positions[old] = change.position_of[order[old]]
    positions[~old] = change.append[order[~old] - len(change.position_of)]
    log.info("index updated from %s: %d rows deleted, %d upserted (%s)", manifest.version, len(change.delete),
             len(change.append), ", ".join(f"{key} {value:.4g}" for key, value in health.items()))
    return Update(index, projection, IndexParams(**manifest.index["params"]), reordered(assembly, positions), order, {
        **lineage, "built": "update", "reason": "", "changed_since_build": lineage["changed_since_build"] + change.count,
        "health": health})


def reordered(assembly: Assembly, positions: np.ndarray) -> Assembly:
    """The assembly with its rows in the order ``positions`` (assembly rows) gives."""
    return replace(assembly, items=assembly.items.take(pa.array(positions)),
                   previous_rows=assembly.previous_rows[positions], fresh_rows=assembly.fresh_rows[positions])


def check_saved(directory: Path, space: np.ndarray, order: np.ndarray) -> str:
    """Why the saved updated index does not hold, row for row, the version's search space (its projected vectors,
    in the written order) within :data:`ROW_TOLERANCE` ("" when it does): every row that moved and a seeded sample
    of the others are compared."""
    moved = np.nonzero(order != np.arange(len(order)))[0]
    sample = np.random.default_rng(0).choice(len(space), min(CHECKED_ROWS, len(space)), replace=False)
    rows = np.union1d(moved, sample)
    saved = VectorIndex.saved_rows(directory, rows, space.shape[1])
    if saved is None or len(order) != len(space):
        return f"the updated index holds no {len(space)} x {space.shape[1]} re-ranking rows"
    if not np.all(np.linalg.norm(saved - space[rows], axis=1) <= ROW_TOLERANCE):
        return "the updated index's rows are not the version's vectors"
    return ""
