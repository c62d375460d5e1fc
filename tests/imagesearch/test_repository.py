"""One suite, two backends: a local folder and GCS through a real emulator."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from imagesearch import repository
from imagesearch.errors import ArtifactError
from imagesearch.repository import GCSRepository, LocalRepository, ModelRepository, open_repository


@pytest.fixture(params=["local", "file-uri", "gcs"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRepository:
    if request.param == "local":
        return open_repository(str(tmp_path / "repo"))
    if request.param == "file-uri":
        return open_repository(f"file://{tmp_path}/repo")
    return open_repository(request.getfixturevalue("gcs_bucket") + "/models")


def test_open_repository_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_repository(str(tmp_path)), LocalRepository)
    assert isinstance(open_repository(f"file://{tmp_path}"), LocalRepository)
    gcs = open_repository("gs://bucket/some/prefix")
    assert isinstance(gcs, GCSRepository) and gcs.uri == "gs://bucket/some/prefix"
    with pytest.raises(ValueError, match="unsupported"):
        open_repository("s3://bucket")


def test_put_get_bytes_and_files(repo: ModelRepository, tmp_path: Path) -> None:
    repo.put_bytes("indexes/v1/a.txt", b"hello")
    assert repo.get_bytes("indexes/v1/a.txt") == b"hello"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: more than one upload chunk
    repo.put_file("indexes/v1/big.bin", big)
    repo.get_file("indexes/v1/big.bin", tmp_path / "out" / "big.bin")
    assert (tmp_path / "out" / "big.bin").read_bytes() == big.read_bytes()
    assert repo.exists("indexes/v1/a.txt")
    assert not repo.exists("indexes/v1/missing.txt")


def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3_000_001))
    return path


def test_local_files_are_copied_in_the_kernel_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    sendfile = os.sendfile

    def counting_sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(offset)
        return sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(repository, "SENDFILE_CHUNK", 1_000_000)
    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    source = big_file(tmp_path)
    repo = LocalRepository(tmp_path / "repo")
    repo.put_file("v1/big.bin", source)
    assert (tmp_path / "repo" / "v1" / "big.bin").read_bytes() == source.read_bytes()
    assert calls == [0, 1_000_000, 2_000_000, 3_000_000, 3_000_001]  # the last call finds the end


def test_local_files_are_copied_through_python_where_sendfile_is_refused(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> int:
        raise OSError(errno.EINVAL, "sendfile not supported between these files")

    monkeypatch.setattr(os, "sendfile", refused)
    source = big_file(tmp_path)
    LocalRepository(tmp_path / "repo").put_file("v1/big.bin", source)
    assert (tmp_path / "repo" / "v1" / "big.bin").read_bytes() == source.read_bytes()


def test_a_copy_that_fails_halfway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sendfile = os.sendfile

    def failing_after_the_first_chunk(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if offset:
            raise OSError(errno.EIO, "input/output error")
        return sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(repository, "SENDFILE_CHUNK", 1_000_000)
    monkeypatch.setattr(os, "sendfile", failing_after_the_first_chunk)
    repo = LocalRepository(tmp_path / "repo")
    with pytest.raises(OSError, match="input/output"):
        repo.put_file("v1/big.bin", big_file(tmp_path))
    assert not repo.exists("v1/big.bin") and list((tmp_path / "repo" / "v1").iterdir()) == []


def test_scratch_files_are_moved_in_and_never_listed(repo: ModelRepository) -> None:
    with repo.scratch_dir() as scratch:
        (scratch / "scann").mkdir()
        source = scratch / "scann" / "dataset.npy"
        source.write_bytes(b"vectors" * 1000)
        identity = source.stat().st_ino
        assert repo.list_keys() == []  # a scratch folder is not part of the store's contents
        repo.move_file("index/scann/dataset.npy", source)
        assert not source.exists()
    assert repo.get_bytes("index/scann/dataset.npy") == b"vectors" * 1000
    assert repo.list_keys() == ["index/scann/dataset.npy"]
    local = repo.local_file("index/scann/dataset.npy")
    if local is not None:  # a local folder takes the file by renaming it: no bytes copied
        assert local.stat().st_ino == identity and local.stat().st_mode & 0o777 == 0o644


def test_a_move_across_file_systems_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replace = os.replace
    renames: list[str] = []

    def cross_device(source: str, target: str) -> None:  # the scratch file lies on another file system
        renames.append(str(source))
        if len(renames) == 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        replace(source, target)  # the copy's own temp file, beside its target

    repo = LocalRepository(tmp_path / "repo")
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(b"abc")
    monkeypatch.setattr(os, "replace", cross_device)
    repo.move_file("v1/a.bin", source)
    assert repo.get_bytes("v1/a.bin") == b"abc" and not source.exists()
    assert renames[0] == str(source) and len(renames) == 2


def test_listing(repo: ModelRepository) -> None:
    for key in ("indexes/v1/a", "indexes/v1/sub/b", "indexes/v2/c", "runs/r1/x"):
        repo.put_bytes(key, b"x")
    assert repo.list_keys("indexes") == ["indexes/v1/a", "indexes/v1/sub/b", "indexes/v2/c"]
    assert repo.list_children("indexes") == ["v1", "v2"]
    assert repo.list_children("") == ["indexes", "runs"]
    assert repo.list_children("nothing-here") == []


def test_child_and_delete(repo: ModelRepository) -> None:
    run = repo.child("runs/r1")
    run.put_bytes("snapshot/run.json", b"{}")
    assert repo.get_bytes("runs/r1/snapshot/run.json") == b"{}"
    assert run.list_keys("snapshot") == ["snapshot/run.json"]
    repo.delete_prefix("runs/r1")
    assert repo.list_keys("runs") == []


def test_missing_objects_raise_a_clear_error(repo: ModelRepository, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        repo.get_bytes("indexes/none")
    with pytest.raises(ArtifactError, match="does not exist"):
        repo.get_file("indexes/none", tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_keys_cannot_escape_the_root(repo: ModelRepository) -> None:
    with pytest.raises(ValueError, match="escapes"):
        repo.put_bytes("../outside", b"x")


def test_local_files_are_readable_by_other_users(tmp_path: Path, photo_catalog: Path) -> None:
    """The serving containers read a local repository as uid 10001, not as the publisher."""
    repo = open_repository(str(tmp_path / "repo"))
    repo.put_bytes("indexes/v/_COMMIT", b"{}")
    repo.put_file("indexes/v/items.csv", photo_catalog)
    for key in ("indexes/v/_COMMIT", "indexes/v/items.csv"):
        assert (tmp_path / "repo" / key).stat().st_mode & 0o777 == 0o644
