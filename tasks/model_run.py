"""What the model run's steps share: the index version it learns from, and the training data gather_training wrote.

``training/data.npz`` (numpy arrays only, never a pickle) holds the split and the copies, in rows of the index
version's ``embeddings.npy`` (the raw vectors, read in place by each step after its checksum):

    train_rows       rows training may use (the held-out items are not among them)
    categories       (n,) int32 per row: a dense category id, -1 unknown; held-out rows are -1 for training
    eval_categories  (n,) int32 per row, held-out rows' too: what category P@10 is scored with
    copies           (m, d) float32 raw vectors of training copies of training items; copy_rows their rows
    eval_copies      (q, d) float32 raw vectors of evaluation copies of held-out items; eval_copy_rows, eval_transforms
    category_rows    held-out rows with a category: the category queries
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from imagesearch.artifacts import latest_version, read_manifest
from imagesearch.errors import ArtifactError
from imagesearch.index_store import StoredVectors
from imagesearch.manifest import Manifest
from imagesearch.projection import (
    LEGACY_WHITENING,
    PROJECTION,
    IdentityProjection,
    Projection,
    legacy_whitening_from_bytes,
    projection_from_bytes,
)
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from tasks.cli import StepContext, StepFailed
from tasks.previous import previous_vectors, verified_file
from tasks.served_version import version_to_keep
from tasks.workspace import LAYOUT


def source_index(repo: ModelRepository, settings: Settings, requested: str) -> Manifest:
    """The index version to learn from: ``requested``, else the one the overlay serves, else the newest committed."""
    version = requested or version_to_keep(settings) or latest_version(repo)
    if version is None:
        raise StepFailed(f"no committed index version in {repo.uri} to learn from: run image_index first")
    try:
        return read_manifest(repo, version)
    except ArtifactError as exc:
        raise StepFailed(f"index version {version}: {exc}") from None


def index_projection(repo: ModelRepository, manifest: Manifest) -> Projection:
    """The projection an index version serves with (what its queries are compared in), its file verified."""
    listed = {entry.path for entry in manifest.files}
    for name, read in ((PROJECTION, projection_from_bytes), (LEGACY_WHITENING, legacy_whitening_from_bytes)):
        if name in listed:
            with verified_file(repo, manifest, name) as path:
                return read(path.read_bytes())
    return IdentityProjection(manifest.model.dim)


@dataclass(frozen=True)
class TrainingData:
    train_rows: np.ndarray
    categories: np.ndarray
    eval_categories: np.ndarray
    copies: np.ndarray
    copy_rows: np.ndarray
    eval_copies: np.ndarray
    eval_copy_rows: np.ndarray
    eval_transforms: np.ndarray
    category_rows: np.ndarray

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{field.name: getattr(self, field.name) for field in fields(self)})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingData:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls(**{field.name: archive[field.name] for field in fields(cls)})


@dataclass(frozen=True)
class ModelRun:
    """A model run's facts (``training/run.json``), its data, and the index version's raw vectors."""

    facts: dict[str, object]
    data: TrainingData
    vectors: StoredVectors
    index: Manifest  # the index version learned from


@contextlib.contextmanager
def opened(context: StepContext) -> Iterator[ModelRun]:
    """The run gather_training prepared, with the index version's raw vectors verified and read in place."""
    workspace = context.workspace
    if not workspace.exists(LAYOUT.TRAINING_RUN.key):
        raise StepFailed("no training data in this workspace: gather_training has not run")
    facts = workspace.read_json(LAYOUT.TRAINING_RUN.key)
    data = TrainingData.from_bytes(workspace.store.get_bytes(LAYOUT.TRAINING_DATA.key))
    repo = context.repository()
    index = read_manifest(repo, facts["index_version"])
    with previous_vectors(repo, index) as vectors:
        yield ModelRun(facts, data, vectors, index)
