from pathlib import Path

import pytest

from imagesearch.artifacts import committed_versions, read_manifest
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks.operations.run_all import parse_args


def test_pipeline_publishes_a_committed_version(published_repository: tuple[Path, str]) -> None:
    folder, version = published_repository
    repo = open_repository(str(folder))
    assert committed_versions(repo) == [version]
    manifest = read_manifest(repo, version)
    assert manifest.item_count == 20
    assert manifest.metrics["recall_at_10"] == 1.0
    # Each photo has a mirrored twin in this catalog, so the copy may rank the twin first: top-10 is the check.
    assert manifest.metrics["near_duplicate_top10"] >= 0.9
    assert {entry.path for entry in manifest.files} >= {"items.parquet", "embeddings.npy"}


@pytest.mark.parametrize("argv", [["--limit", "-1"], ["--min-recall-at-10", "1.5"], ["--catalog", ""],
                                  ["--max-regression-recall-at-10", "-0.1"], ["--limit", "ten"]])
def test_run_all_checks_the_run_parameters_like_the_trigger_form(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv, Settings())
    assert exited.value.code == 2 and argv[0] in capsys.readouterr().err


def test_run_all_takes_the_trigger_forms_fields() -> None:
    args, params = parse_args(["--catalog", "c.csv", "--no-publish", "--full-rebuild", "--version", "20260101T000000Z"],
                              Settings.from_env({"IMAGESEARCH_MIN_RECALL_AT_10": "0.7"}))
    assert (params["catalog_uri"], params["publish"], params["deploy"], params["full_rebuild"]) == ("c.csv", False, True, True)
    assert params["min_recall_at_10"] == 0.7 and args.version == "20260101T000000Z"
