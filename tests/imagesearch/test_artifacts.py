from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.artifacts import (
    commit_local,
    committed_versions,
    fetch,
    latest_version,
    publish,
    seal,
    verify_directory,
    version_key,
)
from imagesearch.errors import ArtifactError, VersionTakenError
from imagesearch.manifest import COMMIT, Manifest, ModelInfo
from imagesearch.repository import ModelRepository, open_repository

MODEL = ModelInfo("efficientnet-lite0", "ab" * 32, "model-a", 1280)


ITEMS = b"PAR1" + b"items" * 100 + b"PAR1"  # of its kind: the Parquet magic is all a version's check reads


def sealed_dir(root: Path, version: str) -> Path:
    directory = root / version
    (directory / "scann").mkdir(parents=True)
    (directory / "items.parquet").write_bytes(ITEMS)
    (directory / "scann" / "scann_config.pb").write_bytes(bytes(range(256)))
    seal(directory, Manifest(version=version, created_at="2026-01-01T00:00:00+00:00", item_count=2, model=MODEL))
    return directory


@pytest.fixture(params=["local", "gcs"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRepository:
    if request.param == "local":
        return open_repository(str(tmp_path / "repo"))
    return open_repository(request.getfixturevalue("gcs_bucket"))


def test_publish_then_fetch_round_trips(repo: ModelRepository, tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path / "build", "20260101T000000Z")
    manifest, uploaded = publish(repo, directory)
    assert uploaded and committed_versions(repo) == ["20260101T000000Z"]
    fetched = fetch(repo, "20260101T000000Z", tmp_path / "serve", model_id="model-a")
    assert fetched == manifest
    assert (tmp_path / "serve" / "scann" / "scann_config.pb").read_bytes() == bytes(range(256))


def test_republish_is_a_no_op_and_a_changed_version_is_refused(repo: ModelRepository, tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path / "build", "20260101T000000Z")
    publish(repo, directory)
    assert publish(repo, directory)[1] is False
    other = sealed_dir(tmp_path / "other", "20260101T000000Z")
    (other / "items.parquet").write_bytes(b"different")
    seal(other, Manifest.decode((other / "manifest.json").read_bytes()))
    with pytest.raises(VersionTakenError, match=r"already committed with a different manifest .* re-run as a new version"):
        publish(repo, other)
    assert repo.get_bytes(version_key("20260101T000000Z", "items.parquet")) == ITEMS  # nothing overwritten


def test_publish_never_overwrites_another_runs_files(tmp_path: Path) -> None:
    """The create-only rule (on GCS ``if_generation_match=0``) tested on the local store: the GCS emulator
    ignores preconditions, so only the local twin of the rule can be shown to refuse here."""
    repo = open_repository(str(tmp_path / "repo"))
    rival = sealed_dir(tmp_path / "rival", "20260101T000000Z-aaaa")
    key = version_key("20260101T000000Z-aaaa", "items.parquet")
    assert repo.put_file(key, rival / "items.parquet", if_absent=True)  # another run, still uploading
    assert not repo.put_bytes(key, b"mine", if_absent=True)  # refused; the object is left as it was
    assert repo.get_bytes(key) == ITEMS
    ours = sealed_dir(tmp_path / "ours", "20260101T000000Z-aaaa")
    (ours / "items.parquet").write_bytes(b"our items")
    seal(ours, Manifest.decode((ours / "manifest.json").read_bytes()))
    with pytest.raises(VersionTakenError, match=r"already written .* by another run.*re-run as a new version"):
        publish(repo, ours)
    assert repo.get_bytes(key) == ITEMS and committed_versions(repo) == []
    # Our own earlier, interrupted try left identical files: publishing again completes the version.
    assert publish(repo, rival)[1] and committed_versions(repo) == ["20260101T000000Z-aaaa"]
    assert not list((tmp_path / "repo").rglob("*.tmp"))


def test_an_upload_that_lands_different_is_caught_before_commit(repo: ModelRepository, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is read back (in place from a local folder, downloaded from GCS) and checked before _COMMIT."""
    directory = sealed_dir(tmp_path / "ours", "20260101T000000Z-bbbb")
    put_file = repo.put_file

    def mangling_put_file(key: str, source: Path, *, if_absent: bool = False) -> bool:
        mangled = tmp_path / "mangled"
        data = bytearray(source.read_bytes())
        data[0] ^= 0xFF
        mangled.write_bytes(bytes(data))
        return put_file(key, mangled, if_absent=if_absent)

    monkeypatch.setattr(repo, "put_file", mangling_put_file)
    with pytest.raises(ArtifactError, match="changed in transit: checksum mismatch after upload"):
        publish(repo, directory)
    assert committed_versions(repo) == [] and not repo.exists(version_key("20260101T000000Z-bbbb", COMMIT))


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
    data = bytearray((directory / "scann" / "scann_config.pb").read_bytes())
    data[7] ^= 0x01
    (directory / "scann" / "scann_config.pb").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"checksum mismatch for scann/scann_config\.pb"):
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


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("scann/scann_docids.pkl", b"\x80\x04N.", "is a pickle, which the project never writes"),
    ("model.pt", b"x", "is a file the project never writes"),
    ("items.parquet", b"not parquet", "items.parquet: not a Parquet file"),
    ("scann/dataset.npy", b"\x93NUMPY\x07\x00", "format version .7, 0. is not one the project writes"),
    ("embeddings.npy", b"not an array", "embeddings.npy: not a valid npy file"),
])
def test_a_version_holds_only_files_the_project_writes(name: str, content: bytes, expected: str, tmp_path: Path) -> None:
    directory = sealed_dir(tmp_path, "20260101T000000Z")
    (directory / name).write_bytes(content)
    with pytest.raises(ArtifactError, match=expected):
        seal(directory, Manifest.decode((directory / "manifest.json").read_bytes()))
        commit_local(directory)
        verify_directory(directory)
