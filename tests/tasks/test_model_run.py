"""The model run's shared parts: which index version it learns from, and its training data's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks.cli import StepFailed
from tasks.model_run import TrainingData, source_index
from tests.conftest import SECOND_VERSION


def test_the_requested_version_else_the_newest_committed(two_versions: Path, tmp_path: Path,
                                                         published_repository: tuple[Path, str]) -> None:
    settings = Settings.from_env({"IMAGESEARCH_GITOPS_REPO_URL": str(tmp_path / "absent.git")})  # nothing served
    repo = open_repository(str(two_versions))
    assert source_index(repo, settings, "").version == SECOND_VERSION
    assert source_index(repo, settings, published_repository[1]).version == published_repository[1]
    with pytest.raises(StepFailed, match=r"index version 20260109T000000Z: .*not committed"):
        source_index(repo, settings, "20260109T000000Z")


def test_training_data_round_trips_as_plain_arrays() -> None:
    rng = np.random.default_rng(0)
    data = TrainingData(
        train_rows=np.arange(3), categories=np.array([0, 1, -1], np.int32), eval_categories=np.array([0, 1, 1], np.int32),
        copies=rng.normal(size=(2, 4)).astype(np.float32), copy_rows=np.array([0, 1]),
        eval_copies=rng.normal(size=(1, 4)).astype(np.float32), eval_copy_rows=np.array([2]),
        eval_transforms=np.array(["blur"]), category_rows=np.array([2]))
    again = TrainingData.from_bytes(data.to_bytes())
    for name in ("train_rows", "categories", "copies", "eval_copies", "eval_transforms", "category_rows"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
