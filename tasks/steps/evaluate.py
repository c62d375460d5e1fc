"""Evaluate the built index against the quality gate: absolute floors, and no regression against what serves.

    python -m tasks.steps.evaluate --workspace URI [--repository URI --serving-overlay gitops/overlays/local]

Metrics (:mod:`tasks.metrics`): recall@10 (ScaNN vs exact search, on a seeded sample), near-duplicate top-1 and
top-10 (transformed copies of the images stored with the version, ``samples.npz``: pixels the pipeline already
fetched, never downloaded again, must find their original), category precision@10. The gate (:mod:`tasks.gate`)
fails (exit 2, nothing is published) when a metric is under its floor, or, when ``--serving-overlay`` names a
version (:mod:`tasks.served_version`), when a metric is worse than that version's by more than its tolerance.
Both versions are scored on the same query sample: the same items, and for near-duplicates the same transformed
copies of the images both versions hold (a copy of a new image says nothing about a version that never had it).
The report (candidate vs serving, per metric, and the verdict) goes to the log, the step's summary,
``evaluate/gate.json`` and the manifest.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.index_store import SAMPLES, open_index
from imagesearch.manifest import Manifest
from tasks import cli
from tasks.gate import gate_report, log_report, thresholds
from tasks.metrics import Scorable, embed_copies, images_of, score, without_near_duplicates
from tasks.samples import read_samples
from tasks.served_version import served_folder, version_to_compare
from tasks.workspace import LAYOUT, Workspace


def candidate_index(workspace: Workspace, directory: Path, version: str) -> tuple[Scorable, str]:
    """The run's own index, from ``directory`` (the workspace's index folder): (scorable, model id)."""
    build = workspace.read_json(LAYOUT.BUILD.key)
    return Scorable.of(version, open_index(directory, build)), build["model"]["model_id"]


def serving_items(directory: Path, manifest: Manifest, model_id: str) -> tuple[dict[str, str] | None, str]:
    """The serving version's items (item id -> image sha256), not loaded yet; or None and why it is not compared."""
    if manifest.model.model_id != model_id:
        return None, f"{manifest.version} was built with model {manifest.model.model_id}, not {model_id}: floors only"
    if "params" not in manifest.index:
        return None, f"{manifest.version} has no index to score (its manifest names no index parameters): floors only"
    return images_of(directory), ""


def evaluate(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace, run = context.args, context.settings, context.workspace, context.run
    workspace.check_writable(LAYOUT.METRICS.top)
    version = run["version"]
    floors, tolerances = thresholds(args, settings)
    served = version_to_compare(settings, args.serving_overlay)
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
            directory, manifest = served_folder(context.repository(), args.serving_overlay, served,
                                                Path(scratch) / "serving")
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
                    serving = Scorable.of(served, open_index(directory, manifest.index))
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
