from __future__ import annotations

import contextlib
import importlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagesearch.settings import Settings, get_settings
from tasks.cli import EXIT_SKIPPED
from tasks.operations.run_all import run_pipeline
from tasks.pipeline import REPOSITORY, SERVING_OVERLAY, VERSION, Step, default_params


@dataclass
class StepResult:
    code: int
    summary: dict[str, Any]
    stderr: str


def run_module(module: str, argv: list[str]) -> StepResult:
    """Run ``python -m <module> argv...`` in-process; capture the summary line and the log."""
    get_settings.cache_clear()  # the module reads its settings as a process of its own would: from the environment now
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = importlib.import_module(module).main(argv)
    lines = out.getvalue().strip().splitlines()
    return StepResult(code, json.loads(lines[-1]) if code in (0, EXIT_SKIPPED) and lines else {}, err.getvalue())


def run_step(module: str, workspace: Path | str, *argv: str) -> StepResult:
    """Run the step CLI ``tasks.steps.<module>`` in-process with its real argv."""
    return run_module(f"tasks.steps.{module}", ["--workspace", str(workspace), *argv])


def run_in_process(step: Step, argv: list[str]) -> dict[str, Any]:
    """A :data:`tasks.operations.run_all.StepRunner` for tests: the step's pod argv (``python -m tasks.steps.<module> ...``)
    run in this process, so monkeypatches and caplog see it; its summary."""
    result = run_module(argv[2], argv[3:])
    assert result.code in (0, EXIT_SKIPPED), result.stderr
    return result.summary


def run_steps(workspace: Path, catalog: Path, repository: Path, version: str, **params: Any) -> dict[str, Any]:
    """Every step of ``tasks.pipeline`` in order with its real argv, as ``tasks.operations.run_all`` runs them (the trigger form's
    ``params`` over settings' defaults), in this process; the summaries by step."""
    settings = Settings.from_env()
    inputs = {**default_params(settings, {"catalog_uri": str(catalog), **params}), REPOSITORY: str(repository),
              VERSION: version, SERVING_OVERLAY: settings.gitops.overlay}
    return run_pipeline(str(workspace), inputs, run_in_process)


@pytest.fixture
def repository(tmp_path: Path, published_repository: tuple[Path, str]) -> Path:
    """A private copy of the session's published repository (tests may add versions to it)."""
    target = tmp_path / "model-repository"
    shutil.copytree(published_repository[0], target, ignore=shutil.ignore_patterns("runs"))
    return target


@pytest.fixture(autouse=True)
def lenient_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    # The photo catalog holds mirrored twins, which a near-duplicate may legitimately rank first.
    monkeypatch.setenv("IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1", "0.5")


@pytest.fixture
def evaluated_workspace(tmp_path: Path, photo_catalog: Path) -> Path:
    """A workspace taken through build_index (not yet evaluated), with no previous version."""
    workspace = tmp_path / "ws"
    repo = str(tmp_path / "repo")
    assert run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", repo,
                    "--version", "20260301T000000Z").code == 0
    for step in ("preprocess", "embed"):
        assert run_step(step, workspace, "--shard", "0").code == 0
    assert run_step("build_index", workspace).code == 0
    return workspace


MODEL_VERSION = "20260201T000000Z"


@pytest.fixture(scope="session")
def model_run(published_repository: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model repository, model-run workspace) after gather_training and train_model on the published photo index.
    Tests that change either work on copies (:func:`copy_model_run`)."""
    base = tmp_path_factory.mktemp("model-run")
    repository = base / "models"
    shutil.copytree(published_repository[0], repository, ignore=shutil.ignore_patterns("runs"))
    workspace = base / "ws"
    gathered = run_step("gather_training", workspace, "--repository", str(repository), "--version", MODEL_VERSION,
                        "--index-version", published_repository[1], "--held-out-fraction", "0.3")
    assert gathered.code == 0, gathered.stderr
    trained = run_step("train_model", workspace, "--repository", str(repository), "--steps", "40")
    assert trained.code == 0, trained.stderr
    return repository, workspace


def copy_model_run(model_run: tuple[Path, Path], target: Path) -> tuple[Path, Path]:
    repository, workspace = (target / "models", target / "ws")
    shutil.copytree(model_run[0], repository)
    shutil.copytree(model_run[1], workspace)
    return repository, workspace
