from pathlib import Path

from imagesearch.artifacts import committed_versions, read_manifest
from imagesearch.repository import open_repository


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
