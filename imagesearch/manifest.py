"""The manifest of an index version (``manifest.json``): its schema, version ids and file hashes.

A manifest names its version, the model, the catalog snapshot, the index parameters, the metrics, the quality
gate's report and every file of the version with its size and sha256. The protocol that publishes, commits and
fetches versions is :mod:`imagesearch.artifacts`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from imagesearch.errors import ArtifactError
from imagesearch.version_files import check_name

MANIFEST = "manifest.json"
COMMIT = "_COMMIT"  # the version's commit marker: see imagesearch.artifacts
VERSION_PATTERN = re.compile(r"\d{8}T\d{6}Z(-[a-z0-9]+)?")  # matched whole (fullmatch): no trailing newline


class FileEntry(msgspec.Struct, frozen=True):
    path: str
    size: int
    sha256: str


class ModelInfo(msgspec.Struct, frozen=True):
    name: str
    weights_sha256: str
    model_id: str
    dim: int
    config: dict[str, Any] = {}  # the EmbedderConfig (pooling, preprocessing); absent in versions built before it was


class Manifest(msgspec.Struct, frozen=True, omit_defaults=True):
    version: str
    created_at: str
    item_count: int
    model: ModelInfo
    catalog: dict[str, Any] = {}
    index: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    files: list[FileEntry] = []
    # The quality gate's report: the verdict, and per metric the candidate, the serving version, floor, tolerance.
    gate: dict[str, Any] = {}
    # A model version's (imagesearch.model_versions): its projection record, the training params and data. Empty
    # fields are not encoded (omit_defaults), so an index version's manifest is byte for byte what it was before.
    training: dict[str, Any] = {}

    @property
    def passed_gate(self) -> bool:
        return self.gate.get("passed") is True

    def encode(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse and check a manifest: a valid version, and every file path relative, inside the version and one the
        project writes (never a pickle): a version listing anything else is refused before any of it is fetched."""
        try:
            manifest = msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError as exc:
            raise ArtifactError(f"invalid manifest: {exc}") from None
        check_version(manifest.version)
        seen: set[str] = set()
        for entry in manifest.files:
            check_name(check_file_path(entry.path))
            if entry.path in seen:
                raise ArtifactError(f"manifest lists {entry.path!r} twice")
            seen.add(entry.path)
        return manifest


def check_file_path(path: str) -> str:
    """A manifest path: relative POSIX, no ``..``, ``.`` or empty parts, not the manifest or the commit marker."""
    parts = path.split("/")
    if (
        not path or path.startswith("/") or "\\" in path or "\0" in path or ":" in parts[0]
        or any(part in ("", ".", "..") for part in parts) or path in (MANIFEST, COMMIT)
    ):
        raise ArtifactError(f"manifest path {path!r} is not a relative path inside the version")
    return path


def new_version(now: datetime | None = None, unique: str | None = None) -> str:
    """A sortable, UTC-timestamp-based version id with a suffix unique to the run, e.g. ``20261127T051500Z-3f9a1c2e``.

    ``unique`` (e.g. the Airflow run id) makes the suffix; retries of one run derive the same version from it.
    Without it the suffix is random: two versions made in the same second never collide.
    """
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = secrets.token_hex(4) if unique is None else hashlib.sha256(unique.encode()).hexdigest()[:8]
    return f"{stamp}-{suffix}"


def check_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise ArtifactError(f"invalid index version {version!r}: expected e.g. 20261127T051500Z")
    return version


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
