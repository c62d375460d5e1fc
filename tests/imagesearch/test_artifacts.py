from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.artifacts import (
    COMMIT,
    Manifest,
    ModelInfo,
    commit_local,
    committed_versions,
    fetch,
    latest_version,
    new_version,
    publish,
    seal,
    verify_directory,
    version_key,
)
from imagesearch.errors import ArtifactError
from imagesearch.repository import ModelRepository, open_repository

MODEL = ModelInfo("efficientnet-lite0", "ab" * 32, "model-a", 1280)


def sealed_dir(root: Path, version: str) -> Path:
    directory = root / version
    (directory / "scann").mkdir(parents=True)
    (directory / "items.parquet").write_bytes(b"items" * 100)
    (directory / "scann" / "index.bin").write_bytes(bytes(range(256)))
    seal(directory, Manifest(version=version, created_at="2026-01-01T00:00:00+00:00", item_count=2, model=MODEL))
    return directory


@pytest.fixture(params=["local", "gcs"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRepository:
    if request.param == "local":
        return open_repository(str(tmp_path / "repo"))
    return open_repository(request.getfixturevalue("gcs_bucket"))


def test_versions_sort_by_time() -> None:
    assert new_version() > "20260101T000000Z"


def test_publish_then_fetch_round_trips(repo: ModelRepository, tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path / "build", "20260101T000000Z")
    manifest, uploaded = publish(repo, directory)
    assert uploaded and committed_versions(repo) == ["20260101T000000Z"]
    fetched = fetch(repo, "20260101T000000Z", tmp_path / "serve", model_id="model-a")
    assert fetched == manifest
    assert (tmp_path / "serve" / "scann" / "index.bin").read_bytes() == bytes(range(256))


def test_republish_is_a_no_op_and_a_changed_version_is_refused(repo: ModelRepository, tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path / "build", "20260101T000000Z")
    publish(repo, directory)
    assert publish(repo, directory)[1] is False
    other = sealed_dir(tmp_path / "other", "20260101T000000Z")
    (other / "items.parquet").write_bytes(b"different")
    seal(other, Manifest.decode((other / "manifest.json").read_bytes()))
    with pytest.raises(ArtifactError, match="already committed"):
        publish(repo, other)


def test_version_without_commit_is_invisible(repo: ModelRepository, tmp_path: Path) -> None:
    publish(repo, sealed_dir(tmp_path / "a", "20260101T000000Z"))
    half = sealed_dir(tmp_path / "b", "20260102T000000Z")
    for path in half.rglob("*"):  # an upload that died before _COMMIT
        if path.is_file():
            repo.put_file(version_key("20260102T000000Z", path.relative_to(half).as_posix()), path)
    assert committed_versions(repo) == ["20260101T000000Z"]
    assert latest_version(repo) == "20260101T000000Z"
    with pytest.raises(ArtifactError, match="not committed"):
        fetch(repo, "20260102T000000Z", tmp_path / "serve")
    assert not (tmp_path / "serve").exists()


def test_flipped_byte_fails_verification(tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path, "20260101T000000Z")
    (directory / COMMIT).write_text("x")
    with pytest.raises(ArtifactError, match="does not match"):
        verify_directory(directory)
    commit_local(directory)
    verify_directory(directory)
    data = bytearray((directory / "scann" / "index.bin").read_bytes())
    data[7] ^= 0x01
    (directory / "scann" / "index.bin").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"checksum mismatch for scann/index\.bin"):
        verify_directory(directory)


def test_fetch_refuses_corruption_and_another_model_leaving_nothing(tmp_path: Path) -> None:
    repo = open_repository(str(tmp_path / "repo"))
    publish(repo, sealed_dir(tmp_path / "build", "20260101T000000Z"))
    with pytest.raises(ArtifactError, match="built with model model-a"):
        fetch(repo, "20260101T000000Z", tmp_path / "serve", model_id="model-b")
    stored = tmp_path / "repo" / "indexes" / "20260101T000000Z" / "items.parquet"
    stored.write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        fetch(repo, "20260101T000000Z", tmp_path / "serve")
    assert list(tmp_path.glob("serve*")) == [] and list(tmp_path.glob(".serve*")) == []


def test_bad_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="invalid index version"):
        fetch(open_repository(str(tmp_path)), "../../etc", tmp_path / "x")
