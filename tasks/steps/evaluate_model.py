"""evaluate_model: the candidate head, the current model and the raw features, scored on the same held-out queries;
the gate refuses a candidate worse than the current model beyond a tolerance.

The current model is the one index runs use now (:func:`imagesearch.model_versions.choose`); with none (no model
version yet, or ``none`` chosen), the projection the learned-from index version serves with (its PCA-whitening, or
the identity for a small index). Near-duplicate top-1 (the mean over transforms and the worst
transform) may drop at most ``--max-regression-near-duplicate-top1``, category P@10 at most
``--max-regression-category-precision`` (defaults: the index gate's tolerances). A refused candidate fails the run
for good (exit 2): nothing is published.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from imagesearch import model_versions
from imagesearch.projection import Projection, load_projection, projection_from_bytes
from imagesearch.training.evaluation import Queries, Scores, compare
from tasks import cli, model_run
from tasks.workspace import LAYOUT

log = logging.getLogger("evaluate_model")
METRICS = {"near_dup_top1": "near_duplicate_top1", "near_dup_worst": "near_duplicate_top1",
           "category_p10": "category_precision_at_10"}  # each score -> the tolerance it is gated with


def metrics_of(scores: Scores) -> dict[str, float]:
    values = {"near_dup_top1": scores.near_dup_top1, "near_dup_worst": scores.near_dup_worst}
    if scores.category_p10 is not None:
        values["category_p10"] = scores.category_p10
    return {name: round(value, 4) for name, value in values.items()}


def gate(candidate: dict[str, float], current: dict[str, float], tolerances: dict[str, float]) -> dict[str, Any]:
    checks = {}
    for name, tolerance_name in METRICS.items():
        if name not in candidate or name not in current:
            continue
        tolerance = tolerances[tolerance_name]
        checks[name] = {"candidate": candidate[name], "current": current[name], "tolerance": tolerance,
                        "passed": candidate[name] >= current[name] - tolerance}
    failed = [name for name, check in checks.items() if not check["passed"]]
    return {"passed": not failed, "checks": checks, "failed": failed}


def current_model(context: cli.StepContext, run: model_run.ModelRun, scratch: Path) -> tuple[str, Projection]:
    """(what it is, its projection): the model version index runs use now, else the index version's projection."""
    repo, model_id = context.repository(), run.index.model.model_id
    try:
        choice = model_versions.choose(repo, model_id, setting=context.settings.pipeline.model_version)
    except model_versions.ModelChoiceError as exc:
        raise cli.StepFailed(f"the current model: {exc}") from None
    if choice.version is None:
        projection = model_run.index_projection(repo, run.index)
        return f"index {run.index.version}'s {projection.kind}", projection
    return choice.version, load_projection(model_versions.fetch_projection(repo, choice.version, model_id,
                                                                           scratch / choice.version))


def evaluate_model(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace = context.args, context.settings, context.workspace
    head = projection_from_bytes(workspace.store.get_bytes(LAYOUT.HEAD.key))
    given = {"near_duplicate_top1": args.max_regression_near_duplicate_top1,
             "category_precision_at_10": args.max_regression_category_precision}
    tolerances = {name: getattr(settings.evaluation, f"max_regression_{name}") if value is None else value
                  for name, value in given.items()}
    with model_run.opened(context) as run, tempfile.TemporaryDirectory(prefix="current-") as scratch:
        current_version, current = current_model(context, run, Path(scratch))
        data = run.data
        queries = Queries(data.eval_copies, data.eval_copy_rows, data.eval_transforms, data.category_rows)
        database = run.vectors.rows(0, len(run.vectors), run.vectors.dtype)
        scores = compare(head, current, database, data.eval_categories, queries)
    metrics = {name: metrics_of(score) for name, score in scores.items()}
    report = {"current_version": current_version, "scores": {name: score.as_dict() for name, score in scores.items()},
              "metrics": metrics, "gate": gate(metrics["candidate"], metrics["current"], tolerances)}
    workspace.write_json(LAYOUT.MODEL_EVALUATION.key, report)
    for name, values in metrics.items():
        log.info("%s: %s", name, ", ".join(f"{metric} {value:.4f}" for metric, value in values.items()))
    summary = {"version": run.facts["version"], "current_version": current_version, "metrics": metrics,
               "gate": report["gate"]}
    if not report["gate"]["passed"]:
        worse = "; ".join(f"{name} {check['candidate']:.4f} < current {check['current']:.4f} - {check['tolerance']}"
                          for name, check in report["gate"]["checks"].items() if not check["passed"])
        raise cli.StepFailed(f"the candidate head is worse than the current model ({current_version}): {worse}; "
                             "nothing is published")
    return summary


main = cli.entry("evaluate_model", evaluate_model, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
