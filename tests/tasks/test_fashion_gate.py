"""Fashion-MNIST (28 px, white on black) publishes under the default quality gate: the near-duplicate test is fair
to it. The 20,000-item figures are in docs/BENCHMARKS.md; a few thousand items are enough here.

The catalog is made from the npm tarball ``make setup`` downloads into data/downloads: no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagesearch.artifacts import fetch, read_manifest
from imagesearch.demo_catalog import fashion_items, fetch_fashion_mnist, write_catalog
from imagesearch.index_store import load_index
from imagesearch.repository import open_repository
from imagesearch.settings import DATA_DIR, EvaluationSettings, Settings
from tasks.metrics import Scorable, score
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
ITEMS = 1500  # 150 per class
# Settings that would move the gate or its sample away from the defaults: none reaches the pipeline.
GATE_SETTINGS = ("IMAGESEARCH_MIN_", "IMAGESEARCH_MAX_REGRESSION_", "IMAGESEARCH_EVAL_")


@pytest.fixture(scope="module")
def fashion_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fashion")
    package = fetch_fashion_mnist(DATA_DIR / "downloads", download=False)  # FileNotFoundError: run `make setup`
    catalog = folder / "catalog.csv"
    write_catalog(fashion_items(package, folder / "images", ITEMS), catalog)
    return catalog


def default_gate_environment(monkeypatch: pytest.MonkeyPatch, gitops_repo: Path) -> dict[str, str]:
    """The test's environment without gate settings; a GitOps repo that does not exist yet: nothing serves."""
    for name in [name for name in os.environ if name.startswith(GATE_SETTINGS)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(gitops_repo))
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def rescore_published(repository: Path, version: str, settings: EvaluationSettings, directory: Path) -> dict[str, float]:
    """recall@10 and category precision@10 of the published version, measured again from the model repository on
    the same seeded query sample ``evaluate`` draws (no near-duplicate copies: those are embedded by ``evaluate``)."""
    manifest = fetch(open_repository(str(repository)), version, directory)
    loaded = load_index(directory, manifest.model.model_id, version)
    item_ids = [str(item_id) for item_id in loaded.items["item_id"]]
    version_index = Scorable(version, loaded.vectors, loaded.embeddings, loaded.projection, item_ids,
                             [str(category) for category in loaded.categories])
    rng = np.random.default_rng(settings.eval_seed)
    sample = np.sort(rng.choice(len(item_ids), size=min(settings.eval_sample_size, len(item_ids)), replace=False))
    return score(version_index, [item_ids[row] for row in sample.tolist()], {})


@pytest.mark.timeout(3600)  # minutes on a quiet machine; far more on a loaded one
def test_fashion_mnist_publishes_under_the_default_gates(
    fashion_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = default_gate_environment(monkeypatch, tmp_path / "gitops.git")
    repository = tmp_path / "models"
    result = subprocess.run(
        [sys.executable, "-m", "tasks.operations.run_all", "--catalog", str(fashion_catalog), "--repository", str(repository),
         "--no-deploy"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=3500,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    version, steps = summary["version"], summary["steps"]
    assert steps["publish"]["version"] == version and steps["publish"]["items"] == ITEMS

    manifest = read_manifest(open_repository(str(repository)), version)
    defaults = Settings.from_env({}).evaluation  # the defaults, whatever the environment says
    gate = manifest.gate
    assert manifest.passed_gate and gate["failures"] == [], gate
    assert gate["serving"] is None, gate  # the first version: the floors alone decide
    rows = gate["metrics"]
    assert rows["near_duplicate_top1"]["floor"] == defaults.min_near_duplicate_top1
    assert rows["recall_at_10"]["floor"] == defaults.min_recall_at_10
    for name, row in rows.items():
        measured = steps["evaluate"]["metrics"][name]  # what evaluate measured and reported
        assert row["passed"] and row["candidate"] == manifest.metrics[name] == measured, (name, gate)
        assert row["floor"] is None or row["candidate"] >= row["floor"], (name, row)
    assert manifest.metrics["near_duplicate_images"] == manifest.metrics["eval_queries"] == defaults.eval_sample_size
    assert 0.5 < rows["category_precision_at_10"]["candidate"] <= 1, rows  # 10 balanced classes: chance is 0.1

    remeasured = rescore_published(repository, version, defaults, tmp_path / "published")
    for name in ("category_precision_at_10", "recall_at_10"):
        assert remeasured[name] == pytest.approx(rows[name]["candidate"], abs=1e-4), (name, remeasured, rows)
