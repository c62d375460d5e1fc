"""The version protocol: ``<root>/<version>/{manifest.json, files..., _COMMIT}`` sealed, published, committed,
listed and fetched; ``<root>`` is ``indexes`` for index versions and ``models`` for model versions (the training
DAG's heads, :mod:`imagesearch.model_versions`): one protocol for both.

``_COMMIT`` holds the sha256 of ``manifest.json`` and is written last: a version without it
does not exist for readers. Readers verify every file against the manifest before use. The manifest's
schema, version ids and file hashes are :mod:`imagesearch.manifest`.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import msgspec

from imagesearch.errors import ArtifactError, VersionNotCommittedError, VersionTakenError
from imagesearch.manifest import (
    COMMIT,
    MANIFEST,
    VERSION_PATTERN,
    FileEntry,
    Manifest,
    check_version,
    sha256_file,
)
from imagesearch.repository import ModelRepository
from imagesearch.version_files import check_content

INDEXES = "indexes"
MODELS = "models"
_KIND = {INDEXES: "index", MODELS: "model"}  # what a version under each root is called in messages


def data_files(directory: Path) -> list[Path]:
    special = (directory / MANIFEST, directory / COMMIT)
    return sorted(path for path in directory.rglob("*") if path.is_file() and path not in special)


def check_exactly_listed(directory: Path, manifest: Manifest) -> None:
    """Refuse a version holding anything the manifest does not list (a planted pickle), or any symlink."""
    listed = {entry.path for entry in manifest.files} | {MANIFEST, COMMIT}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_symlink():
            raise ArtifactError(f"{relative} in version {manifest.version} is a symlink")
        if path.is_file() and relative not in listed:
            raise ArtifactError(f"{relative} in version {manifest.version} is not listed in its manifest")
        if not path.is_file() and not path.is_dir():
            raise ArtifactError(f"{relative} in version {manifest.version} is not a regular file")


def version_directory(root: Path, directory: Path) -> Path:
    """``directory`` if it is ``<root>/<valid version>`` (no symlink, no ``..``); the only shape loaded from disk."""
    if not directory.is_absolute() or ".." in directory.parts or directory.is_symlink():
        raise ArtifactError(f"{directory} is not an absolute path to a version folder")
    if directory.parent.resolve() != root.resolve() or not VERSION_PATTERN.fullmatch(directory.name):
        raise ArtifactError(f"{directory} is not <index root>/<version> (index root: {root})")
    return directory


def seal(directory: Path, manifest: Manifest) -> Manifest:
    """Record every data file with size + sha256 and write ``manifest.json`` (no ``_COMMIT``)."""
    files = [
        FileEntry(path.relative_to(directory).as_posix(), path.stat().st_size, sha256_file(path))
        for path in data_files(directory)
    ]
    sealed = msgspec.structs.replace(manifest, files=files)
    (directory / MANIFEST).write_bytes(sealed.encode())
    return sealed


def commit_local(directory: Path) -> None:
    """Mark a sealed local directory complete (for local index directories, not the repository)."""
    (directory / COMMIT).write_text(sha256_file(directory / MANIFEST) + "\n")


def verify_directory(directory: Path, model_id: str | None = None, version: str | None = None) -> Manifest:
    """Check ``_COMMIT``, the manifest, that it lists exactly the files present, and every file's size and
    sha256, then that each file's content is of the kind its name says (no object arrays, no foreign ScaNN assets);
    the manifest if all is well. Nothing in the version is loaded before this passes."""
    commit, manifest_path = directory / COMMIT, directory / MANIFEST
    if not commit.is_file():
        raise ArtifactError(f"{directory} has no {COMMIT}: the version is incomplete")
    if not manifest_path.is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST}")
    if commit.read_text().strip() != sha256_file(manifest_path):
        raise ArtifactError(f"{directory}/{MANIFEST} does not match its {COMMIT} checksum")
    manifest = Manifest.decode(manifest_path.read_bytes())
    if version is not None and manifest.version != version:
        raise ArtifactError(f"{directory} holds version {manifest.version}, not {version}")
    check_exactly_listed(directory, manifest)
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise ArtifactError(f"{entry.path} is missing from {directory}")
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise ArtifactError(f"checksum mismatch for {entry.path} in version {manifest.version}")
    for entry in manifest.files:
        check_content(directory, entry.path)
    if model_id is not None and manifest.model.model_id != model_id:
        raise ArtifactError(
            f"version {manifest.version} was built with model {manifest.model.model_id}, "
            f"but this process embeds queries with {model_id}"
        )
    return manifest


def version_key(version: str, name: str = "", root: str = INDEXES) -> str:
    return "/".join(part for part in (root, check_version(version), name) if part)


def is_committed(repo: ModelRepository, version: str, root: str = INDEXES) -> bool:
    return repo.exists(version_key(version, COMMIT, root))


def committed_versions(repo: ModelRepository, root: str = INDEXES) -> list[str]:
    """Versions that readers may see, oldest first."""
    return [
        version
        for version in repo.list_children(root)
        if VERSION_PATTERN.fullmatch(version) and is_committed(repo, version, root)
    ]


def latest_version(repo: ModelRepository, root: str = INDEXES) -> str | None:
    versions = committed_versions(repo, root)
    return versions[-1] if versions else None


def read_manifest(repo: ModelRepository, version: str, root: str = INDEXES) -> Manifest:
    if not is_committed(repo, version, root):
        raise VersionNotCommittedError(f"{_KIND[root]} version {version} is not committed in {repo.uri}")
    manifest = Manifest.decode(repo.get_bytes(version_key(version, MANIFEST, root)))
    if manifest.version != version:
        raise ArtifactError(f"the manifest of {version} in {repo.uri} names version {manifest.version}")
    return manifest


def version_taken(version: str, repo: ModelRepository, what: str, root: str = INDEXES) -> VersionTakenError:
    return VersionTakenError(
        f"{_KIND[root]} version {version} is already {what} in {repo.uri} by another run; versions are immutable and "
        "nothing was overwritten: re-run as a new version (trigger a new run, or omit --version)"
    )


def _stored_sha256(repo: ModelRepository, key: str, scratch: Path) -> str:
    """The sha256 of the object as stored, read back: in place in a local repository, else downloaded."""
    local = repo.local_file(key)
    if local is not None:
        return sha256_file(local)
    echo = scratch / "echo"
    repo.get_file(key, echo)
    try:
        return sha256_file(echo)
    finally:
        echo.unlink()


def _put_new(repo: ModelRepository, key: str, source: Path, sha256: str, scratch: Path, root: str) -> None:
    """Create ``key`` from ``source``, never replacing another object; an identical one (our own earlier try) is kept."""
    if not repo.put_file(key, source, if_absent=True) and _stored_sha256(repo, key, scratch) != sha256:
        raise version_taken(key.split("/")[1], repo, f"written (different {key.rsplit('/', 1)[-1]})", root)
    if _stored_sha256(repo, key, scratch) != sha256:
        raise ArtifactError(f"{key} changed in transit: checksum mismatch after upload")


def publish(repo: ModelRepository, directory: Path, root: str = INDEXES) -> tuple[Manifest, bool]:
    """Upload a sealed directory as its version; ``_COMMIT`` last. Returns (manifest, uploaded?).

    Versions are immutable: every object is created only if absent (on GCS ``if_generation_match=0``, locally
    an exclusive link), so a run never overwrites another's files. Re-publishing a committed version with the
    same manifest is a no-op; a different one is refused (:class:`VersionTakenError`). Every file is read back
    and checked before ``_COMMIT`` is written.
    """
    manifest_bytes = (directory / MANIFEST).read_bytes()
    manifest = Manifest.decode(manifest_bytes)
    version = check_version(manifest.version)
    if is_committed(repo, version, root):
        if repo.get_bytes(version_key(version, MANIFEST, root)) != manifest_bytes:
            raise version_taken(version, repo, "committed with a different manifest", root)
        return manifest, False
    with tempfile.TemporaryDirectory(prefix="verify-") as scratch:
        for entry in manifest.files:
            _put_new(repo, version_key(version, entry.path, root), directory / entry.path, entry.sha256, Path(scratch),
                     root)
        _put_new(repo, version_key(version, MANIFEST, root), directory / MANIFEST,
                 hashlib.sha256(manifest_bytes).hexdigest(), Path(scratch), root)
    commit = (hashlib.sha256(manifest_bytes).hexdigest() + "\n").encode()
    if not repo.put_bytes(version_key(version, COMMIT, root), commit, if_absent=True) and \
            repo.get_bytes(version_key(version, COMMIT, root)) != commit:
        raise version_taken(version, repo, "committed", root)
    return manifest, True


def fetch(repo: ModelRepository, version: str, target: Path, model_id: str | None = None,
          root: str = INDEXES) -> Manifest:
    """Download a committed version into ``target`` and verify it; nothing half-filled is left."""
    manifest = read_manifest(repo, version, root)
    listed = {version_key(version, name, root) for name in (MANIFEST, COMMIT, *(entry.path for entry in manifest.files))}
    unlisted = [key for key in repo.list_keys(version_key(version, root=root)) if key not in listed]
    if unlisted:
        raise ArtifactError(f"{unlisted[0]} is not listed in the manifest of version {version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for entry in manifest.files:
            repo.get_file(version_key(version, entry.path, root), staging / entry.path)
        for name in (MANIFEST, COMMIT):
            repo.get_file(version_key(version, name, root), staging / name)
        verified = verify_directory(staging, model_id, version)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return verified
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
