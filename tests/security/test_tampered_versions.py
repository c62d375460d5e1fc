"""Tampered index versions are refused by the fetch-index initContainer and by the admin swap, before
anything in them is loaded: a version holds code in no form (no pickle, listed or not; no object array; no
ScaNN asset outside it), and a planted pickle must never be opened."""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient

from imagesearch.artifacts import data_files
from imagesearch.embedder import Embedder
from imagesearch.errors import ArtifactError
from imagesearch.index import IndexParams, VectorIndex
from imagesearch.index_store import EMBEDDINGS, SAMPLES, load_index
from imagesearch.manifest import COMMIT, MANIFEST, FileEntry, Manifest, sha256_file
from imagesearch.settings import ServingSettings, Settings
from serving.app import create_app
from serving.fetch import fetch_index

VERSION = "20260101T000000Z"
TOKEN = "tamper-test-token"


class Trap:
    """Unpickling this creates ``marker``: proof that a pickle was opened."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def admin_settings(index_dir: Path) -> Settings:
    return Settings.from_env({}, serving=ServingSettings(index_dir=str(index_dir), admin_token=TOKEN))


def rewrite_manifest(version_dir: Path, change: Callable[[Manifest], Manifest]) -> None:
    """Change the manifest and re-seal _COMMIT, as someone with write access to the bucket could."""
    manifest = change(Manifest.decode((version_dir / MANIFEST).read_bytes()))
    data = msgspec.json.encode(manifest)
    (version_dir / MANIFEST).write_bytes(data)
    (version_dir / COMMIT).write_text(hashlib.sha256(data).hexdigest() + "\n")


def plant_pickle(version_dir: Path) -> None:
    (version_dir / "scann" / "scann_docids.pkl").write_bytes(pickle.dumps(Trap(version_dir.parent / "UNPICKLED")))


def reseal(version_dir: Path) -> None:
    """List every file present, with its real size and checksum, as someone with write access could."""
    entries = [FileEntry(path.relative_to(version_dir).as_posix(), path.stat().st_size, sha256_file(path))
               for path in data_files(version_dir)]
    rewrite_manifest(version_dir, lambda m: msgspec.structs.replace(m, files=entries))


def listed_pickle(version_dir: Path) -> None:
    plant_pickle(version_dir)
    reseal(version_dir)


def listed_foreign_file(version_dir: Path) -> None:
    (version_dir / "model.pt").write_bytes(pickle.dumps(Trap(version_dir.parent / "UNPICKLED")))
    reseal(version_dir)


def object_array(version_dir: Path) -> None:
    """embeddings.npy replaced by an object array: ``np.load(allow_pickle=True)`` would run the trap."""
    np.save(version_dir / EMBEDDINGS, np.array([Trap(version_dir.parent / "UNPICKLED")], dtype=object), allow_pickle=True)
    reseal(version_dir)


def object_array_in_npz(version_dir: Path) -> None:
    np.savez(version_dir / SAMPLES, pixels=np.array([Trap(version_dir.parent / "UNPICKLED")], dtype=object))
    reseal(version_dir)


def foreign_scann_asset(version_dir: Path) -> None:
    """scann_assets.pbtxt naming a file outside the version (ScaNN would read whatever it names)."""
    assets = version_dir / "scann" / "scann_assets.pbtxt"
    assets.write_text(assets.read_text().replace('asset_path: "dataset.npy"', 'asset_path: "/etc/passwd"'))
    reseal(version_dir)


def extra_file(version_dir: Path) -> None:
    (version_dir / "notes.txt").write_text("not in the manifest")


def flip_byte(version_dir: Path) -> None:
    with (version_dir / EMBEDDINGS).open("r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 1]))


def flip_manifest_byte(version_dir: Path) -> None:
    data = bytearray((version_dir / MANIFEST).read_bytes())
    data[data.index(b'"item_count"') + 14] ^= 1
    (version_dir / MANIFEST).write_bytes(bytes(data))


def path_outside(path: str) -> Callable[[Path], None]:
    def tamper(version_dir: Path) -> None:
        entry = FileEntry(path, 5, hashlib.sha256(b"owned").hexdigest())
        rewrite_manifest(version_dir, lambda m: msgspec.structs.replace(m, files=[*m.files, entry]))

    return tamper


def other_version_inside(version_dir: Path) -> None:
    rewrite_manifest(version_dir, lambda m: msgspec.structs.replace(m, version="20250101T000000Z"))


def listed_twice(version_dir: Path) -> None:
    rewrite_manifest(version_dir, lambda m: msgspec.structs.replace(m, files=[*m.files, m.files[0]]))


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "planted-scann-pickle": (plant_pickle, "scann_docids.pkl"),
    "listed-scann-pickle": (listed_pickle, "scann/scann_docids.pkl is a pickle, which the project never writes"),
    "listed-foreign-file": (listed_foreign_file, "model.pt is a file the project never writes into a version"),
    "object-array-npy": (object_array, "embeddings.npy: holds an array of dtype object, which would be unpickled"),
    "object-array-in-npz": (object_array_in_npz, "samples.npz: holds an array of dtype object, which would be unpickled"),
    "foreign-scann-asset": (foreign_scann_asset, "scann/scann_assets.pbtxt: is not a list of ScaNN assets beside it"),
    "extra-file": (extra_file, "notes.txt"),
    "flipped-byte": (flip_byte, "checksum mismatch for embeddings.npy"),
    "flipped-manifest-byte": (flip_manifest_byte, f"does not match its {COMMIT} checksum"),
    "manifest-path-dotdot": (path_outside("../../../escape.txt"), "not a relative path inside the version"),
    "manifest-path-absolute": (path_outside("/etc/cron.d/owned"), "not a relative path inside the version"),
    "manifest-path-nested-dotdot": (path_outside("scann/../../x"), "not a relative path inside the version"),
    "manifest-names-another-version": (other_version_inside, "20250101T000000Z"),
    "manifest-lists-a-file-twice": (listed_twice, "twice"),
}


@pytest.fixture
def tampered_repository(index_a: Path, tmp_path: Path) -> Callable[[str], Path]:
    def make(name: str) -> Path:
        repository = tmp_path / "models"
        version_dir = repository / "indexes" / VERSION
        shutil.copytree(index_a, version_dir)
        TAMPERS[name][0](version_dir)
        return repository

    return make


@pytest.mark.parametrize("name", list(TAMPERS))
def test_fetch_refuses_a_tampered_version(name: str, tampered_repository: Callable[[str], Path], tmp_path: Path,
                                          embedder: Embedder) -> None:
    repository = tampered_repository(name)
    target = tmp_path / "volume" / "current"
    with pytest.raises(ArtifactError, match=TAMPERS[name][1]):
        fetch_index(VERSION, str(repository), str(target), embedder.model_id)
    assert not target.exists() and (not target.parent.exists() or list(target.parent.iterdir()) == [])
    assert not (repository / "indexes" / "UNPICKLED").exists()
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("name", list(TAMPERS))
def test_admin_swap_refuses_a_tampered_version(name: str, index_a: Path, tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "indexes"
    serving, candidate = root / VERSION, root / "20260109T000000Z"
    shutil.copytree(index_a, serving)
    shutil.copytree(index_a, candidate)
    rewrite_manifest(candidate, lambda m: msgspec.structs.replace(m, version=candidate.name))
    TAMPERS[name][0](candidate)
    settings = admin_settings(serving)
    with TestClient(create_app(settings, embedder)) as client:
        response = client.post("/admin/index", json={"directory": str(candidate)}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 422, response.text
        expected = TAMPERS[name][1].replace("20250101T000000Z", "holds version 20250101T000000Z")
        assert expected in response.json()["detail"]
        assert client.get("/readyz").json()["version"] == VERSION
    assert not (root / "UNPICKLED").exists()


def test_an_untampered_candidate_swaps_in(index_a: Path, tmp_path: Path, embedder: Embedder) -> None:
    """The control case: the same preparation without tampering is accepted."""
    root = tmp_path / "indexes"
    shutil.copytree(index_a, root / VERSION)
    candidate = root / "20260109T000000Z"
    shutil.copytree(index_a, candidate)
    rewrite_manifest(candidate, lambda m: msgspec.structs.replace(m, version=candidate.name))
    with TestClient(create_app(admin_settings(root / VERSION), embedder)) as client:
        response = client.post("/admin/index", json={"directory": str(candidate)}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and response.json()["version"] == candidate.name


SHAPES = {
    "outside-the-index-root": lambda root, tmp: tmp / "elsewhere" / VERSION,
    "not-a-version-name": lambda root, tmp: root / "current",
    "dotdot-in-the-path": lambda root, tmp: root / ".." / "indexes" / VERSION,
    "symlinked-version": lambda root, tmp: root / "20260110T000000Z",
    "the-filesystem-root": lambda root, tmp: Path("/"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_admin_swap_accepts_only_index_root_slash_version(shape: str, index_a: Path, tmp_path: Path,
                                                          embedder: Embedder) -> None:
    root = tmp_path / "indexes"
    shutil.copytree(index_a, root / VERSION)
    shutil.copytree(index_a, tmp_path / "elsewhere" / VERSION)
    (root / "current").symlink_to(root / VERSION)
    (root / "20260110T000000Z").symlink_to(tmp_path / "elsewhere" / VERSION)
    directory = SHAPES[shape](root, tmp_path)
    with TestClient(create_app(admin_settings(root / VERSION), embedder)) as client:
        response = client.post("/admin/index", json={"directory": str(directory)}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 422 and response.json()["error"] == "invalid_index", response.text
        assert client.get("/readyz").json()["version"] == VERSION


def test_load_index_never_opens_an_unlisted_pickle(index_a: Path, tmp_path: Path) -> None:
    directory = tmp_path / VERSION
    shutil.copytree(index_a, directory)
    plant_pickle(directory)
    with pytest.raises(ArtifactError, match=r"scann/scann_docids.pkl in version .* is not listed in its manifest"):
        load_index(directory)
    assert not (tmp_path / "UNPICKLED").exists()


def test_the_searcher_loads_without_unpickling_a_planted_docids_file(index_a: Path, tmp_path: Path) -> None:
    """Even past verification, loading the searcher never opens ScaNN's docids pickle; the control shows that
    ScaNN's own ``load_searcher`` does open it, so the trap would fire if we used it."""
    from scann.scann_ops.py import scann_ops_pybind

    directory = tmp_path / VERSION
    shutil.copytree(index_a, directory)
    plant_pickle(directory)
    manifest = Manifest.decode((directory / MANIFEST).read_bytes())
    loaded = VectorIndex.load(directory, IndexParams(**manifest.index["params"]), manifest.item_count)
    rows, _ = loaded.search(np.load(directory / "scann" / "dataset.npy", allow_pickle=False)[3], 1)
    assert rows.tolist() == [[3]]
    assert not (tmp_path / "UNPICKLED").exists()
    with contextlib.suppress(Exception):  # the trap's payload (an open file) is no docid list: it fails after running
        scann_ops_pybind.load_searcher(str(directory / "scann"))
    assert (tmp_path / "UNPICKLED").exists()
