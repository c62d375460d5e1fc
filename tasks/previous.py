"""The latest committed version's image hashes and embeddings, for incremental reuse."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from imagesearch.artifacts import Manifest, read_manifest, sha256_file, version_key
from imagesearch.errors import ArtifactError
from imagesearch.index_store import EMBEDDINGS, ITEMS, read_items
from imagesearch.repository import ModelRepository


def _fetch_verified(repo: ModelRepository, manifest: Manifest, name: str, target: Path) -> Path:
    entry = next((f for f in manifest.files if f.path == name), None)
    if entry is None:
        raise ArtifactError(f"version {manifest.version} has no {name}")
    repo.get_file(version_key(manifest.version, name), target)
    if sha256_file(target) != entry.sha256:
        raise ArtifactError(f"{name} of version {manifest.version} fails its checksum")
    return target


def previous_hashes(repo: ModelRepository, version: str | None) -> dict[str, int]:
    """image sha256 -> row in the previous version (empty when there is none)."""
    if not version:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        items = read_items(_fetch_verified(repo, read_manifest(repo, version), ITEMS, Path(scratch) / ITEMS))
    return {sha: row for row, sha in enumerate(items["image_sha256"])}


def previous_embeddings(repo: ModelRepository, version: str, model_id: str) -> np.ndarray:
    manifest = read_manifest(repo, version)
    if manifest.model.model_id != model_id:
        raise ArtifactError(f"version {version} used model {manifest.model.model_id}, not {model_id}")
    with tempfile.TemporaryDirectory() as scratch:
        return np.load(_fetch_verified(repo, manifest, EMBEDDINGS, Path(scratch) / EMBEDDINGS), allow_pickle=False)
