"""Evaluate the built index against the quality gate: absolute floors, and no regression against what serves.

    python -m tasks.evaluate --workspace URI [--repository URI --serving-overlay gitops/overlays/local]

Metrics: recall@10 (ScaNN vs exact search, on a seeded sample), near-duplicate top-1 and top-10
(transformed copies of the images stored with the version, ``samples.npz``: pixels the pipeline already
fetched, never downloaded again, must find their original), category precision@10. The gate fails (exit 2,
nothing is published) when a metric is under its floor, or, when ``--serving-overlay`` names a version,
when a metric is worse than that version's by more than its tolerance. Both versions are scored on the
same query sample: the same items, and for near-duplicates the same transformed copies of the images both
versions hold (a copy of a new image says nothing about a version that never had it). The report (candidate vs serving, per
metric, and the verdict) goes to the log, the step's summary, ``evaluate/gate.json`` and the manifest.
"""

from __future__ import annotations

import argparse
import gc
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from imagesearch import gitops
from imagesearch.artifacts import MANIFEST, Manifest, fetch, is_committed, verify_directory, version_key
from imagesearch.augment import near_duplicate
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.errors import ImageError
from imagesearch.index import IndexParams, VectorIndex, exact_search
from imagesearch.index_store import (
    ITEMS,
    SAMPLES,
    OpenedIndex,
    open_index,
    search_space,
)
from imagesearch.preprocess import decode_image
from imagesearch.repository import open_model_repository
from imagesearch.settings import Settings
from imagesearch.whitening import Whitening
from tasks import cli
from tasks.samples import read_samples
from tasks.workspace import LAYOUT, Workspace

log = logging.getLogger("evaluate")
K = 10
# The metrics the gate compares with the serving version, and the settings holding their floors / tolerances.
GATED = ("recall_at_10", "near_duplicate_top1", "category_precision_at_10")
EPSILON = 1e-9


@dataclass(frozen=True)
class Scorable:
    """One version's index as the gate scores it: embeddings in search space, rows by item id."""

    version: str
    vectors: VectorIndex
    embeddings: np.ndarray
    whitening: Whitening | None
    item_ids: list[str]
    categories: list[str]

    @classmethod
    def of(cls, version: str, opened: OpenedIndex) -> Scorable:
        return cls(version, opened.vectors, opened.embeddings, opened.whitening, list(opened.items["item_id"]),
                   [str(category) for category in opened.items["category"]])

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
        queries = search_space(np.stack([copies[item_id] for item_id in with_copy]), version.whitening)
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


def candidate_index(workspace: Workspace, directory: Path, version: str) -> tuple[Scorable, str]:
    """The run's own index, from ``directory`` (the workspace's index folder): (scorable, model id)."""
    build = workspace.read_json(LAYOUT.BUILD.key)
    return Scorable.of(version, open_index(directory, IndexParams(**build["params"]))), build["model"]["model_id"]


def serving_version(args: argparse.Namespace, settings: Settings) -> str | None:
    """The version the target overlay names now (None: no overlay given, no local GitOps repo yet, or empty)."""
    if not args.serving_overlay:
        return None
    config = gitops.GitOpsConfig.from_settings(settings, overlay=args.serving_overlay)
    local = gitops.local_repo_path(config.url)
    if local is not None and not (local / "HEAD").is_file():
        log.warning("no GitOps repo at %s yet: nothing serves, only the floors apply", config.url)
        return None
    return gitops.served_version(config) or None


def serving_directory(args: argparse.Namespace, settings: Settings, version: str,
                      scratch: Path) -> tuple[Path, Manifest]:
    """The committed serving version's folder, verified once (every checksum, nothing unlisted): read in place
    in a local repository, else downloaded into ``scratch``."""
    repository = open_model_repository(settings, args.repository)
    if not is_committed(repository, version):
        raise cli.StepFailed(f"the overlay {args.serving_overlay} serves {version}, which is not committed in "
                             f"{repository.uri}: the gate cannot compare with it (wrong --repository?)")
    in_place = repository.local_file(version_key(version, MANIFEST))
    if in_place is not None:
        return in_place.parent, verify_directory(in_place.parent, version=version)
    return scratch, fetch(repository, version, scratch)


def serving_items(directory: Path, manifest: Manifest, model_id: str) -> tuple[dict[str, str] | None, str]:
    """The serving version's items (item id -> image sha256), not loaded yet; or None and why it is not compared."""
    if manifest.model.model_id != model_id:
        return None, f"{manifest.version} was built with model {manifest.model.model_id}, not {model_id}: floors only"
    if "params" not in manifest.index:
        return None, f"{manifest.version} has no index to score (its manifest names no index parameters): floors only"
    return images_of(directory), ""


def images_of(directory: Path) -> dict[str, str]:
    """item id -> image sha256 of a version folder's items (two columns read, not the whole table)."""
    items = pq.read_table(directory / ITEMS, columns=["item_id", "image_sha256"]).to_pydict()
    return dict(zip(items["item_id"], items["image_sha256"], strict=True))


def without_near_duplicates(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if not name.startswith("near_duplicate_")}


def gate_report(candidate: dict[str, float], floors: dict[str, float], tolerances: dict[str, float],
                serving: dict[str, float] | None, shared: dict[str, float] | None) -> dict[str, Any]:
    """Per metric: candidate, floor, and (with a serving version) both scores on the shared sample, the delta,
    the tolerance; the failures and the verdict."""
    rows: dict[str, dict[str, Any]] = {}
    failures = []
    for name in GATED:
        if name not in candidate:
            continue
        row: dict[str, Any] = {"candidate": candidate[name], "floor": floors.get(name)}
        if row["floor"] is not None and candidate[name] < row["floor"] - EPSILON:
            failures.append(f"{name} {candidate[name]:.4f} < floor {row['floor']}")
        if serving is not None and shared is not None and name in serving and name in shared:
            delta = round(shared[name] - serving[name], 4)
            row.update({"serving": serving[name], "candidate_on_shared": shared[name], "delta": delta,
                        "tolerance": tolerances[name]})
            if delta < -tolerances[name] - EPSILON:
                failures.append(f"{name} {shared[name]:.4f} vs serving {serving[name]:.4f}: "
                                f"{delta:+.4f} is beyond the tolerance -{tolerances[name]}")
        row["passed"] = not any(failure.startswith(f"{name} ") for failure in failures)
        rows[name] = row
    return {"passed": not failures, "failures": failures, "metrics": rows}


def log_report(report: dict[str, Any]) -> None:
    log.info("quality gate: candidate %s vs serving %s (%s)", report["candidate"], report["serving"] or "none",
             report["comparison"])
    log.info("%-26s %10s %10s %10s %8s %10s %8s  %s", "metric", "candidate", "floor", "serving", "delta",
             "tolerance", "", "")
    for name, row in report["metrics"].items():
        cells = [row.get(key) for key in ("candidate", "floor", "serving", "delta", "tolerance")]
        text = ["-" if cell is None else f"{cell:g}" for cell in cells]
        log.info("%-26s %10s %10s %10s %8s %10s %8s", name, *text, "ok" if row["passed"] else "FAIL")
    log.info("verdict: %s", "passed" if report["passed"] else "FAILED: " + "; ".join(report["failures"]))


def _option(value: float | None, default: float) -> float:
    return default if value is None else value


def thresholds(args: argparse.Namespace, settings: Settings) -> tuple[dict[str, float], dict[str, float]]:
    floors = {"recall_at_10": _option(args.min_recall, settings.evaluation.min_recall_at_10),
              "near_duplicate_top1": _option(args.min_near_duplicate_top1, settings.evaluation.min_near_duplicate_top1)}
    tolerances = {
        "recall_at_10": _option(args.max_regression_recall, settings.evaluation.max_regression_recall_at_10),
        "near_duplicate_top1": _option(args.max_regression_near_duplicate_top1,
                                       settings.evaluation.max_regression_near_duplicate_top1),
        "category_precision_at_10": _option(args.max_regression_category_precision,
                                            settings.evaluation.max_regression_category_precision_at_10),
    }
    return floors, tolerances


def evaluate(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace, run = context.args, context.settings, context.workspace, context.run
    workspace.check_writable(LAYOUT.METRICS.top)
    version = run["version"]
    floors, tolerances = thresholds(args, settings)
    served = serving_version(args, settings)
    rng = np.random.default_rng(settings.evaluation.eval_seed)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch, workspace.directory(LAYOUT.INDEX.key) as built:
        candidate, model_id = candidate_index(workspace, built, version)
        embedder = Embedder(EmbedderConfig.from_dict(run["embedder"]), threads=settings.pipeline.torch_threads)
        if embedder.model_id != model_id:
            raise cli.StepFailed(f"index was built with {model_id}, evaluator embeds with {embedder.model_id}")
        size = min(settings.evaluation.eval_sample_size, len(candidate.item_ids))
        sample = np.sort(rng.choice(len(candidate.item_ids), size=size, replace=False))
        query_ids = [candidate.item_ids[row] for row in sample.tolist()]
        copies = embed_copies(embedder, read_samples(built / SAMPLES), settings)
        metrics: dict[str, Any] = {**score(candidate, query_ids, copies), "eval_queries": len(query_ids),
                                   "near_duplicate_images": len(copies)}
        serving_metrics = shared_metrics = None
        comparison = "nothing serves yet: floors only"
        if served is not None and served != version:
            directory, manifest = serving_directory(args, settings, served, Path(scratch) / "serving")
            held, comparison = serving_items(directory, manifest, model_id)
            if held is not None:
                shared_ids = [item_id for item_id in query_ids if item_id in held]
                # A copy of an image the serving version never held says nothing about it: near-duplicates are
                # compared on the items whose image both versions hold (an hourly run samples new images first).
                image_of = images_of(built)
                shared_copies = {item_id: vector for item_id, vector in copies.items()
                                 if item_id in held and held[item_id] == image_of.get(item_id)}
                comparison = (f"same {len(shared_ids)} of {len(query_ids)} sampled items; near-duplicates on "
                              f"{len(shared_copies)} of {len(copies)} copies (the images both versions hold)")
                if shared_ids:
                    same = len(shared_ids) == len(query_ids) and len(shared_copies) == len(copies)
                    shared_metrics = metrics if same else score(candidate, shared_ids, shared_copies)
                    # One version in memory at a time: at a million items each holds several GB.
                    del candidate
                    gc.collect()
                    serving = Scorable.of(served, open_index(directory, IndexParams(**manifest.index["params"])))
                    serving_metrics = score(serving, shared_ids, shared_copies)
                    if not shared_copies:  # no copy to compare on: the near-duplicate floor alone applies
                        shared_metrics = without_near_duplicates(shared_metrics)
                        serving_metrics = without_near_duplicates(serving_metrics)
    report = {"candidate": version, "serving": served, "comparison": comparison,
              **gate_report(metrics, floors, tolerances, serving_metrics, shared_metrics)}
    log_report(report)
    workspace.write_json(LAYOUT.METRICS.key, metrics)
    workspace.write_json(LAYOUT.GATE.key, report)
    if not report["passed"]:
        raise cli.StepFailed("quality gate failed, nothing will be published: " + "; ".join(report["failures"]))
    return {"metrics": metrics, "passed": True, "gate": report}


main = cli.entry("evaluate", evaluate, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
