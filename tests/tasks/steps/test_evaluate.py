"""evaluate: the quality gate blocks a broken index, and compares the candidate with the version the overlay
serves, on the same query sample."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagesearch import gitops
from imagesearch.artifacts import committed_versions
from imagesearch.repository import open_repository
from tasks.workspace import LAYOUT, Workspace
from tests.gitops.support import bootstrapped
from tests.tasks.conftest import run_step

SERVING = "--serving-overlay", "gitops/overlays/local"


@pytest.fixture
def serving(repository: Path, published_repository: tuple[Path, str], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A private model repository whose published version the local overlay serves."""
    version = published_repository[1]
    config = bootstrapped(tmp_path, str(repository))
    gitops.bump(config, version, open_repository(str(repository)))
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", config.url)
    return repository, version


def candidate(published_repository: tuple[Path, str], target: Path, version: str) -> Path:
    """The serving version's run workspace, copied as a new run that has not been published."""
    models, served = published_repository
    shutil.copytree(models / "runs" / served, target)
    (target / LAYOUT.COMMITTED.key).unlink()
    workspace = Workspace(str(target))
    workspace.write_json("snapshot/run.json", {**workspace.run_info(), "version": version})
    return target


def test_an_equal_candidate_passes_and_the_report_reaches_the_summary(
    serving: tuple[Path, str], published_repository: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="evaluate")
    repository, served = serving
    workspace = candidate(published_repository, tmp_path / "equal", "20260601T000000Z-equal")
    result = run_step("evaluate", workspace, "--repository", str(repository), *SERVING)
    assert result.code == 0, result.stderr
    report = result.summary["gate"]
    assert (report["candidate"], report["serving"], report["passed"]) == ("20260601T000000Z-equal", served, True)
    assert report["comparison"] == ("same 20 of 20 sampled items; near-duplicates on 20 of 20 copies "
                                    "(the images both versions hold)")
    for name in ("recall_at_10", "near_duplicate_top1", "category_precision_at_10"):
        row = report["metrics"][name]
        assert row["candidate"] == row["serving"] and row["delta"] == 0 and row["passed"], (name, row)
    assert report["metrics"]["near_duplicate_top1"]["tolerance"] == 0.02
    assert json.loads((workspace / "evaluate" / "gate.json").read_text()) == report
    assert "verdict: passed" in caplog.text and f"vs serving {served}" in caplog.text  # the task log


def test_a_candidate_with_vectors_shuffled_between_items_is_blocked_by_the_regression_gate(
    serving: tuple[Path, str], published_repository: tuple[Path, str], tmp_path: Path
) -> None:
    repository, served = serving
    workspace = candidate(published_repository, tmp_path / "worse", "20260601T000000Z-worse")
    items_path = workspace / "index" / "items.parquet"
    table = pq.read_table(items_path)  # each item now owns another item's vector
    pq.write_table(table.take(np.random.default_rng(7).permutation(table.num_rows).tolist()), items_path)
    floors_off = ("--min-recall", "0", "--min-near-duplicate-top1", "0")

    blocked = run_step("evaluate", workspace, "--repository", str(repository), *SERVING, *floors_off)
    assert blocked.code == 2 and "quality gate failed, nothing will be published" in blocked.stderr
    assert "near_duplicate_top1" in blocked.stderr and "vs serving" in blocked.stderr
    report = json.loads((workspace / "evaluate" / "gate.json").read_text())
    assert report["passed"] is False and report["serving"] == served
    assert not report["metrics"]["near_duplicate_top1"]["passed"]
    assert not report["metrics"]["category_precision_at_10"]["passed"]
    assert report["metrics"]["recall_at_10"]["passed"]  # ScaNN still finds the nearest vectors
    assert run_step("publish", workspace, "--repository", str(repository)).code == 2

    # Without a serving version (the first run) only the floors apply: here switched off, so it passes.
    alone = run_step("evaluate", workspace, "--repository", str(repository), *floors_off)
    assert alone.code == 0 and alone.summary["gate"]["serving"] is None, alone.stderr
    # And a tolerance wide enough lets it through: the tolerances are parameters.
    tolerant = run_step("evaluate", workspace, "--repository", str(repository), *SERVING, *floors_off,
                        "--max-regression-near-duplicate-top1", "1", "--max-regression-category-precision", "1")
    assert tolerant.code == 0, tolerant.stderr


def test_near_duplicates_are_compared_only_on_images_both_versions_hold(
    serving: tuple[Path, str], published_repository: tuple[Path, str], tmp_path: Path
) -> None:
    """Every sampled item got a new image since the serving version: its copies say nothing about that version,
    so near-duplicates are judged by their floor alone, while recall and category precision are compared."""
    repository, served = serving
    workspace = candidate(published_repository, tmp_path / "new-images", "20260601T000000Z-newimg")
    items_path = workspace / "index" / "items.parquet"
    table = pq.read_table(items_path)
    changed = pa.array([format(row, "064x") for row in range(table.num_rows)], pa.string())
    pq.write_table(table.set_column(table.schema.get_field_index("image_sha256"), "image_sha256", changed), items_path)
    result = run_step("evaluate", workspace, "--repository", str(repository), *SERVING)
    assert result.code == 0, result.stderr
    report = result.summary["gate"]
    assert report["serving"] == served
    assert report["comparison"] == ("same 20 of 20 sampled items; near-duplicates on 0 of 20 copies "
                                    "(the images both versions hold)")
    near_duplicates = report["metrics"]["near_duplicate_top1"]
    assert "serving" not in near_duplicates and near_duplicates["candidate"] >= near_duplicates["floor"]
    assert report["metrics"]["recall_at_10"]["delta"] == 0  # still compared, on the same items


def test_a_serving_version_that_fails_its_checksums_is_never_loaded(
    serving: tuple[Path, str], published_repository: tuple[Path, str], tmp_path: Path
) -> None:
    """A local repository's serving version is read in place, so it is verified there before ScaNN loads it."""
    repository, served = serving
    vectors = repository / "indexes" / served / "embeddings.npy"
    data = bytearray(vectors.read_bytes())
    data[-1] ^= 0xFF
    vectors.write_bytes(bytes(data))
    workspace = candidate(published_repository, tmp_path / "next", "20260601T000000Z-next")
    gate = (workspace / "evaluate" / "gate.json").read_bytes()  # the copied run's: no verdict is written
    result = run_step("evaluate", workspace, "--repository", str(repository), *SERVING)
    assert result.code == 2, result.stderr
    assert "embeddings.npy" in result.stderr and "checksum" in result.stderr
    assert (workspace / "evaluate" / "gate.json").read_bytes() == gate
    assert vectors.read_bytes() == bytes(data)  # read, never rewritten


def test_gate_blocks_an_index_with_shuffled_ids(evaluated_workspace: Path, tmp_path: Path) -> None:
    items_path = evaluated_workspace / "index" / "items.parquet"
    table = pq.read_table(items_path)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), items_path)
    result = run_step("evaluate", evaluated_workspace)
    assert result.code == 2  # permanent: a retry cannot help
    assert "quality gate failed" in result.stderr and "near_duplicate_top1" in result.stderr and "< floor 0.5" in result.stderr
    published = run_step("publish", evaluated_workspace, "--repository", str(tmp_path / "repo"))
    assert published.code == 2 and "has not passed evaluation" in published.stderr
    assert committed_versions(open_repository(str(tmp_path / "repo"))) == []
