"""evaluate_model's gate: a worse head fails the run for good (exit 2) and nothing is published; a head that passes
is published by publish_model as a model version, then becomes the current model the next candidate must match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch import model_versions
from imagesearch.projection import LinearHead
from imagesearch.repository import open_repository
from tasks.workspace import LAYOUT, Workspace
from tests.tasks.conftest import copy_model_run, run_step

LENIENT = ("--max-regression-near-duplicate-top1", "1", "--max-regression-category-precision", "1")


@pytest.fixture(autouse=True)
def nothing_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))


def plant_bad_head(workspace: Path) -> LinearHead:
    """A head that throws nearly everything away: two random directions."""
    rng = np.random.default_rng(9)
    head = LinearHead(mean=np.zeros(1280, np.float32), weight=rng.normal(size=(1280, 2)).astype(np.float32))
    Workspace(str(workspace)).put_bytes(LAYOUT.HEAD.key, head.to_bytes())
    return head


def test_a_worse_head_is_refused_and_nothing_is_published(model_run: tuple[Path, Path], tmp_path: Path) -> None:
    repository, workspace = copy_model_run(model_run, tmp_path)
    plant_bad_head(workspace)
    result = run_step("evaluate_model", workspace, "--repository", str(repository))
    assert result.code == 2, result.stderr
    # No model version yet: the current model is the projection the index version serves with (a small index's
    # identity, here: the raw features).
    assert "the candidate head is worse than the current model (index 20260101T000000Z's identity)" in result.stderr
    assert "nothing is published" in result.stderr
    report = Workspace(str(workspace)).read_json(LAYOUT.MODEL_EVALUATION.key)
    assert report["gate"]["passed"] is False and "near_dup_top1" in report["gate"]["failed"]
    assert set(report["metrics"]) == {"candidate", "current", "raw"}
    assert report["metrics"]["current"] == report["metrics"]["raw"]
    refused = run_step("publish_model", workspace, "--repository", str(repository))
    assert refused.code == 2 and "has not passed its gate" in refused.stderr
    assert model_versions.versions(open_repository(str(repository))) == []
