"""gather_training on the published photo index: an honest split, copies of the right items, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagesearch.augment import EVALUATION_DISTORTIONS
from imagesearch.index_store import ITEMS, read_items
from imagesearch.training.evaluation import held_out
from tasks.model_run import TrainingData
from tasks.workspace import LAYOUT, Workspace
from tests.tasks.conftest import MODEL_VERSION, run_step


def test_held_out_items_never_reach_training(model_run: tuple[Path, Path], published_repository: tuple[Path, str]) -> None:
    repository, workspace = model_run
    store = Workspace(str(workspace))
    facts = store.read_json(LAYOUT.TRAINING_RUN.key)
    assert facts["version"] == MODEL_VERSION and facts["index_version"] == published_repository[1]
    data = TrainingData.from_bytes(store.store.get_bytes(LAYOUT.TRAINING_DATA.key))
    item_ids = read_items(repository / "indexes" / published_repository[1] / ITEMS)["item_id"]
    held = np.flatnonzero(held_out(item_ids, 0.3))
    assert len(held) == facts["held_out_items"] > 0
    assert not set(held) & set(data.train_rows.tolist())
    assert not set(held) & set(data.copy_rows.tolist())  # no training copy of a held-out item
    assert (data.categories[held] == -1).all() and (data.eval_categories[held] >= 0).all()
    assert set(data.eval_copy_rows.tolist()) == set(held.tolist())
    assert sorted(set(data.eval_transforms.tolist())) == sorted(d.name for d in EVALUATION_DISTORTIONS)
    assert len(data.copies) == 4 * len(data.train_rows) and data.copies.shape[1] == 1280
    assert facts["categories"] > 1 and set(data.category_rows.tolist()) == set(held.tolist())


def test_no_index_version_to_learn_from_is_a_clear_permanent_failure(tmp_path: Path) -> None:
    result = run_step("gather_training", tmp_path / "ws", "--repository", str(tmp_path / "empty"),
                      "--index-version", "")
    assert result.code == 2 and "no committed index version" in result.stderr and "run image_index first" in result.stderr
    missing = run_step("gather_training", tmp_path / "ws", "--repository", str(tmp_path / "empty"),
                       "--index-version", "20260101T000000Z")
    assert missing.code == 2 and "index version 20260101T000000Z" in missing.stderr
