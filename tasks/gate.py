"""The quality gate: absolute floors, and no regression beyond a tolerance against the version that serves.

Floors and tolerances come from the step's options, else settings; the report (per metric: candidate, floor,
and with a serving version both scores on the shared sample, the delta and the tolerance; the failures and the
verdict) goes to the log, ``evaluate/gate.json`` and the manifest.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from imagesearch.settings import Settings

log = logging.getLogger("evaluate")
# The metrics the gate compares with the serving version, and the settings holding their floors / tolerances.
GATED = ("recall_at_10", "near_duplicate_top1", "category_precision_at_10")
EPSILON = 1e-9


def _option(value: float | None, default: float) -> float:
    return default if value is None else value


def thresholds(args: argparse.Namespace, settings: Settings) -> tuple[dict[str, float], dict[str, float]]:
    """(floors, tolerances) by metric: the options given, else settings'."""
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
