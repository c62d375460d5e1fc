"""tasks.gate: floors, tolerances against the serving version, and the verdict."""

from __future__ import annotations

import argparse
import logging

import pytest

from imagesearch.settings import Settings
from tasks.gate import gate_report, log_report, thresholds

FLOORS = {"recall_at_10": 0.9, "near_duplicate_top1": 0.8}
TOLERANCES = {"recall_at_10": 0.01, "near_duplicate_top1": 0.05, "category_precision_at_10": 0.03}


def options(**given: float) -> argparse.Namespace:
    names = ("min_recall", "min_near_duplicate_top1", "max_regression_recall", "max_regression_near_duplicate_top1",
             "max_regression_category_precision")
    return argparse.Namespace(**{name: given.get(name) for name in names})


def test_options_override_settings() -> None:
    settings = Settings.from_env({"IMAGESEARCH_MIN_RECALL_AT_10": "0.7"})
    floors, tolerances = thresholds(options(max_regression_recall=0.2), settings)
    assert floors["recall_at_10"] == 0.7 and tolerances["recall_at_10"] == 0.2
    assert tolerances["category_precision_at_10"] == settings.evaluation.max_regression_category_precision_at_10


def test_floors_alone_without_a_serving_version() -> None:
    report = gate_report({"recall_at_10": 0.95, "near_duplicate_top1": 0.7}, FLOORS, TOLERANCES, None, None)
    assert not report["passed"] and report["failures"] == ["near_duplicate_top1 0.7000 < floor 0.8"]
    assert report["metrics"]["recall_at_10"] == {"candidate": 0.95, "floor": 0.9, "passed": True}


def test_a_regression_beyond_its_tolerance_fails_on_the_shared_sample(caplog: pytest.LogCaptureFixture) -> None:
    candidate = {"recall_at_10": 0.95, "near_duplicate_top1": 0.9, "category_precision_at_10": 0.5}
    serving = {"recall_at_10": 0.97, "near_duplicate_top1": 0.9, "category_precision_at_10": 0.52}
    report = gate_report(candidate, FLOORS, TOLERANCES, serving, candidate)
    assert report["failures"] == ["recall_at_10 0.9500 vs serving 0.9700: -0.0200 is beyond the tolerance -0.01"]
    row = report["metrics"]["category_precision_at_10"]
    assert (row["delta"], row["floor"], row["passed"]) == (-0.02, None, True)
    with caplog.at_level(logging.INFO, logger="evaluate"):
        log_report({"candidate": "v2", "serving": "v1", "comparison": "same 10 of 10", **report})
    assert "verdict: FAILED: recall_at_10" in caplog.text and "FAIL" in caplog.text
