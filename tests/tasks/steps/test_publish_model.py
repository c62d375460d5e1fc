"""publish_model: a gated head becomes an immutable model version, which is then the current model the next
candidate must match; an evaluated-but-refused or unevaluated head is never published."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import model_versions
from imagesearch.repository import open_repository
from tasks.workspace import LAYOUT, Workspace
from tests.tasks.conftest import MODEL_VERSION, copy_model_run, run_step
from tests.tasks.steps.test_evaluate_model import LENIENT, plant_bad_head


@pytest.fixture(autouse=True)
def nothing_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))


def test_an_unevaluated_head_is_never_published(model_run: tuple[Path, Path], tmp_path: Path) -> None:
    repository, workspace = copy_model_run(model_run, tmp_path)
    refused = run_step("publish_model", workspace, "--repository", str(repository))
    assert refused.code == 2 and "has not been evaluated" in refused.stderr
    assert model_versions.versions(open_repository(str(repository))) == []


def test_a_gated_head_is_published_and_then_is_the_current_model(model_run: tuple[Path, Path], tmp_path: Path) -> None:
    repository, workspace = copy_model_run(model_run, tmp_path)
    evaluated = run_step("evaluate_model", workspace, "--repository", str(repository), *LENIENT)
    assert evaluated.code == 0, evaluated.stderr
    assert evaluated.summary["gate"]["passed"]
    assert evaluated.summary["current_version"] == "index 20260101T000000Z's identity"
    assert set(evaluated.summary["metrics"]["candidate"]) == {"near_dup_top1", "near_dup_worst", "category_p10"}
    published = run_step("publish_model", workspace, "--repository", str(repository))
    assert published.code == 0, published.stderr
    repo = open_repository(str(repository))
    (manifest,) = model_versions.versions(repo)
    assert manifest.version == MODEL_VERSION and manifest.passed_gate
    assert manifest.training["index_version"] and manifest.training["params"]["steps"] == 40
    assert manifest.metrics["candidate_near_dup_top1"] == evaluated.summary["metrics"]["candidate"]["near_dup_top1"]
    assert model_versions.choose(repo, manifest.model.model_id).version == MODEL_VERSION
    assert run_step("publish_model", workspace, "--repository", str(repository)).summary["uploaded"] is False

    plant_bad_head(workspace)  # the next candidate is compared with the published head, the current model
    again = run_step("evaluate_model", workspace, "--repository", str(repository))
    assert again.code == 2 and f"worse than the current model ({MODEL_VERSION})" in again.stderr
    report = Workspace(str(workspace)).read_json(LAYOUT.MODEL_EVALUATION.key)
    assert report["current_version"] == MODEL_VERSION and set(report["metrics"]) == {"candidate", "current", "raw"}
