"""train_model: a head for the backbone's features, trained on the training rows only, exported numpy-only."""

from __future__ import annotations

from pathlib import Path

from imagesearch.projection import LinearHead, projection_from_bytes
from tasks.workspace import LAYOUT, Workspace
from tests.tasks.conftest import run_step


def test_the_head_is_exported_with_its_report(model_run: tuple[Path, Path]) -> None:
    store = Workspace(str(model_run[1]))
    head = projection_from_bytes(store.store.get_bytes(LAYOUT.HEAD.key))
    assert isinstance(head, LinearHead) and head.in_dim == 1280
    report = store.read_json(LAYOUT.HEAD_REPORT.key)
    facts = store.read_json(LAYOUT.TRAINING_RUN.key)
    assert report["items"] == facts["train_items"] and report["copies"] == facts["training_copies"]
    assert report["config"]["steps"] == 40 and report["chosen"] in report["validation"]


def test_without_gathered_data_the_step_fails_for_good(tmp_path: Path) -> None:
    result = run_step("train_model", tmp_path / "ws", "--repository", str(tmp_path / "models"))
    assert result.code == 2 and "gather_training has not run" in result.stderr
