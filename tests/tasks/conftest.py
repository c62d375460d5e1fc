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


@dataclass
class StepResult:
    code: int
    summary: dict[str, Any]
    stderr: str


def run_step(step: str, workspace: Path | str, *argv: str) -> StepResult:
    """Run a step's CLI in-process with its real argv; capture the summary line and the log."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = importlib.import_module(f"tasks.{step}").main(["--workspace", str(workspace), *argv])
    lines = out.getvalue().strip().splitlines()
    return StepResult(code, json.loads(lines[-1]) if code == 0 and lines else {}, err.getvalue())


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
