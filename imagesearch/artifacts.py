"""The artifact contract: ``indexes/<version>/{manifest.json, files..., _COMMIT}``.

``_COMMIT`` holds the sha256 of ``manifest.json`` and is written last: a version without it
does not exist for readers. Readers verify every file against the manifest before use.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from imagesearch.errors import ArtifactError
from imagesearch.repository import ModelRepository

INDEXES = "indexes"
MANIFEST = "manifest.json"
COMMIT = "_COMMIT"
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z(-[a-z0-9]+)?$")


class FileEntry(msgspec.Struct, frozen=True):
    path: str
    size: int
    sha256: str


class ModelInfo(msgspec.Struct, frozen=True):
    name: str
    weights_sha256: str
    model_id: str
    dim: int


class Manifest(msgspec.Struct, frozen=True):
    version: str
    created_at: str
    item_count: int
    model: ModelInfo
    catalog: dict[str, Any] = {}
    index: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    files: list[FileEntry] = []

    def encode(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            return msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError as exc:
            raise ArtifactError(f"invalid manifest: {exc}") from None


def new_version(now: datetime | None = None) -> str:
    """A sortable, UTC-timestamp-based version id, e.g. ``20261127T051500Z``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise ArtifactError(f"invalid index version {version!r}: expected e.g. 20261127T051500Z")
    return version


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(directory: Path) -> list[Path]:
    return sorted(
        path for path in directory.rglob("*") if path.is_file() and path.name not in (MANIFEST, COMMIT)
    )


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


def verify_directory(directory: Path, model_id: str | None = None) -> Manifest:
    """Check ``_COMMIT``, the manifest and every file; the manifest if all is well."""
    commit, manifest_path = directory / COMMIT, directory / MANIFEST
    if not commit.is_file():
        raise ArtifactError(f"{directory} has no {COMMIT}: the version is incomplete")
    if not manifest_path.is_file():
        raise ArtifactError(f"{directory} has no {MANIFEST}")
    if commit.read_text().strip() != sha256_file(manifest_path):
        raise ArtifactError(f"{directory}/{MANIFEST} does not match its {COMMIT} checksum")
    manifest = Manifest.decode(manifest_path.read_bytes())
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise ArtifactError(f"{entry.path} is missing from {directory}")
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise ArtifactError(f"checksum mismatch for {entry.path} in version {manifest.version}")
    if model_id is not None and manifest.model.model_id != model_id:
        raise ArtifactError(
            f"version {manifest.version} was built with model {manifest.model.model_id}, "
            f"but this process embeds queries with {model_id}"
        )
    return manifest


def version_key(version: str, name: str = "") -> str:
    return "/".join(part for part in (INDEXES, check_version(version), name) if part)


def is_committed(repo: ModelRepository, version: str) -> bool:
    return repo.exists(version_key(version, COMMIT))


def committed_versions(repo: ModelRepository) -> list[str]:
    """Versions that readers may see, oldest first."""
    return [
        version
        for version in repo.list_children(INDEXES)
        if VERSION_PATTERN.match(version) and is_committed(repo, version)
    ]


def latest_version(repo: ModelRepository) -> str | None:
    versions = committed_versions(repo)
    return versions[-1] if versions else None


def read_manifest(repo: ModelRepository, version: str) -> Manifest:
    if not is_committed(repo, version):
        raise ArtifactError(f"index version {version} is not committed in {repo.uri}")
    return Manifest.decode(repo.get_bytes(version_key(version, MANIFEST)))


def publish(repo: ModelRepository, directory: Path) -> tuple[Manifest, bool]:
    """Upload a sealed directory as its version; ``_COMMIT`` last. Returns (manifest, uploaded?).

    Re-publishing a committed version with the same manifest is a no-op; a different one is refused
    (versions are immutable). Every file is read back and checked before ``_COMMIT`` is written.
    """
    manifest_bytes = (directory / MANIFEST).read_bytes()
    manifest = Manifest.decode(manifest_bytes)
    version = check_version(manifest.version)
    if is_committed(repo, version):
        if repo.get_bytes(version_key(version, MANIFEST)) != manifest_bytes:
            raise ArtifactError(f"version {version} is already committed with a different manifest")
        return manifest, False
    with tempfile.TemporaryDirectory(prefix="verify-") as scratch:
        for entry in manifest.files:
            key = version_key(version, entry.path)
            repo.put_file(key, directory / entry.path)
            echo = Path(scratch) / "echo"
            repo.get_file(key, echo)
            if sha256_file(echo) != entry.sha256:
                raise ArtifactError(f"{key} changed in transit: checksum mismatch after upload")
            echo.unlink()
    repo.put_bytes(version_key(version, MANIFEST), manifest_bytes)
    repo.put_bytes(version_key(version, COMMIT), (hashlib.sha256(manifest_bytes).hexdigest() + "\n").encode())
    return manifest, True


def fetch(repo: ModelRepository, version: str, target: Path, model_id: str | None = None) -> Manifest:
    """Download a committed version into ``target`` and verify it; nothing half-filled is left."""
    manifest = read_manifest(repo, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for entry in manifest.files:
            repo.get_file(version_key(version, entry.path), staging / entry.path)
        for name in (MANIFEST, COMMIT):
            repo.get_file(version_key(version, name), staging / name)
        verified = verify_directory(staging, model_id)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return verified
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
