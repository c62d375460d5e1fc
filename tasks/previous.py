"""The last committed version, as incremental runs reuse it: its items' change stamps and its vectors.

``snapshot`` reads the previous version's manifest and ``items.parquet`` (verified) to decide which
items are unchanged; ``build_index`` opens its ``embeddings.npy`` once, memory-mapped (verified against
the manifest), to gather the reused rows. A previous version that is missing, corrupt or built with
another model is never reused: the run rebuilds everything and the log says why.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch.artifacts import latest_version, read_manifest, version_key
from imagesearch.errors import ArtifactError
from imagesearch.index_store import EMBEDDINGS, ITEMS, StoredVectors
from imagesearch.manifest import FileEntry, Manifest, sha256_file
from imagesearch.repository import ModelRepository

CHANGE_COLUMNS = ("item_id", "image_uri", "updated_at", "image_stamp", "image_sha256")


@dataclass
class PreviousVersion:
    manifest: Manifest
    items: pa.Table  # CHANGE_COLUMNS (text) of every row, in the version's row order

    @property
    def version(self) -> str:
        return self.manifest.version


def _entry(manifest: Manifest, name: str) -> FileEntry:
    entry = next((f for f in manifest.files if f.path == name), None)
    if entry is None:
        raise ArtifactError(f"version {manifest.version} has no {name}")
    return entry


@contextmanager
def verified_file(repo: ModelRepository, manifest: Manifest, name: str) -> Iterator[Path]:
    """A version's file checked against its manifest: read in place from a local repository, else downloaded once."""
    entry = _entry(manifest, name)
    key = version_key(manifest.version, name)
    with tempfile.TemporaryDirectory(prefix="previous-") as scratch:
        path = repo.local_file(key)
        if path is None:
            path = Path(scratch) / name
            repo.get_file(key, path)
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise ArtifactError(f"{name} of version {manifest.version} fails its checksum")
        yield path


def load_previous(repo: ModelRepository, version: str, model_id: str) -> PreviousVersion:
    """The version's change columns; ArtifactError (with the reason) when it cannot be reused."""
    manifest = read_manifest(repo, version)
    if manifest.model.model_id != model_id:
        raise ArtifactError(f"version {version} was built with model {manifest.model.model_id}, "
                            f"this run embeds with {model_id}")
    embeddings = _entry(manifest, EMBEDDINGS)
    if (local := repo.local_file(version_key(version, EMBEDDINGS))) is not None and local.stat().st_size != embeddings.size:
        raise ArtifactError(f"{EMBEDDINGS} of version {version} has {local.stat().st_size} bytes, "
                            f"its manifest says {embeddings.size}")
    with verified_file(repo, manifest, ITEMS) as path:
        stored = pq.read_schema(path).names
        table = pq.read_table(path, columns=[name for name in CHANGE_COLUMNS if name in stored])
    if table.num_rows != manifest.item_count:
        raise ArtifactError(f"version {version} lists {table.num_rows} items, its manifest says {manifest.item_count}")
    # Versions from before change detection have no stamps: none of their items counts as unchanged.
    columns = {name: table.column(name).cast(pa.string()) if name in table.column_names
               else pa.nulls(table.num_rows, pa.string()) for name in CHANGE_COLUMNS}
    return PreviousVersion(manifest, pa.table(columns))


@contextmanager
def previous_vectors(repo: ModelRepository, manifest: Manifest) -> Iterator[StoredVectors]:
    """The version's raw vectors, read in place after one checksum pass (downloaded once when remote)."""
    with verified_file(repo, manifest, EMBEDDINGS) as path:
        vectors = StoredVectors(path)
        if vectors.shape != (manifest.item_count, manifest.model.dim):
            raise ArtifactError(f"{EMBEDDINGS} of version {manifest.version} has shape {vectors.shape}, "
                                f"expected {(manifest.item_count, manifest.model.dim)}")
        yield vectors


def read_previous(repo: ModelRepository, full_rebuild: bool, model_id: str) -> tuple[PreviousVersion | None, str]:
    """The last committed version to reuse, or None and why everything is fetched and embedded again."""
    if full_rebuild:
        return None, "full rebuild asked for"
    version = latest_version(repo)
    if version is None:
        return None, f"no committed version in {repo.uri} yet"
    try:
        return load_previous(repo, version, model_id), ""
    except ArtifactError as exc:
        return None, f"the previous version {version} cannot be reused ({exc})"
