"""Which projection a run's index is built with: a given one (a ``projection.npz``, e.g. a model version's
weights) or one learned on the version's vectors (PCA-whitening; the identity for small indexes).

The model version (:func:`model_choice`): ``snapshot --model-version`` (the run's ``model_version`` param), else
IMAGESEARCH_MODEL_VERSION, the pin or the newest gated version (:func:`imagesearch.model_versions.choose`); its
``projection.npz`` is fetched, verified and planned as ``--projection`` would be (a given ``--projection`` wins).

``snapshot --projection PATH`` checks the file and places it in the workspace (``model/projection.npz``) and
records it in the run facts, so "nothing changed" compares it (:mod:`tasks.unchanged`); ``build_index`` projects
with ``--projection PATH`` when given, else that workspace file, else learns a PCA-whitening.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imagesearch import model_versions
from imagesearch.errors import ArtifactError, RepositoryUnavailableError
from imagesearch.index_store import StoredVectors
from imagesearch.model_versions import ModelChoice, ModelChoiceError
from imagesearch.projection import IdentityProjection, PcaWhitening, Projection, load_projection, projection_from_bytes
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from tasks.cli import StepFailed
from tasks.workspace import LAYOUT, Workspace

FIT_SAMPLE = 200_000  # rows the PCA-whitening is learned on (a seeded sample beyond that)


def given_file(path: str, dim: int) -> Projection:
    """The projection at ``path`` (a local file), checked, for ``dim``-d raw vectors; else the step fails."""
    try:
        projection = load_projection(Path(path))
    except ArtifactError as exc:
        raise StepFailed(f"--projection {exc}") from None
    return checked_dim(projection, dim, path)


def checked_dim(projection: Projection, dim: int, where: str) -> Projection:
    if projection.in_dim != dim:
        raise StepFailed(f"the projection {where} takes {projection.in_dim}-d vectors; the run's model makes {dim}-d")
    return projection


def model_choice(repo: ModelRepository, projection_path: str | None, model_id: str, param: str,
                 settings: Settings) -> ModelChoice | None:
    """The run's model version; None when ``--projection`` gives the projection instead."""
    if projection_path:
        return None
    try:
        return model_versions.choose(repo, model_id, param, settings.pipeline.model_version)
    except ModelChoiceError as exc:
        raise StepFailed(str(exc)) from None


@contextlib.contextmanager
def model_file(repo: ModelRepository, projection_path: str | None, model: ModelChoice | None,
               model_id: str) -> Iterator[str | None]:
    """The projection file to plan with: ``--projection``'s, else the chosen model version's (fetched and verified
    into a scratch folder, removed after), else None (build_index learns one)."""
    if model is None or model.version is None:
        yield projection_path
        return
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        try:
            path = model_versions.fetch_projection(repo, model.version, model_id, Path(scratch) / model.version)
        except RepositoryUnavailableError:
            raise
        except ArtifactError as exc:
            raise StepFailed(f"model version {model.version}: {exc}") from None
        yield str(path)


def plan(workspace: Workspace, path: str | None, dim: int) -> dict[str, Any] | None:
    """snapshot's part: check the projection at ``path`` and place it in the workspace for build_index (none: remove
    one an earlier try placed); what the run facts record of it (None: build_index learns one)."""
    if not path:
        if workspace.exists(LAYOUT.PROJECTION.key):
            workspace.check_writable(LAYOUT.PROJECTION.key)
            workspace.store.delete_prefix(LAYOUT.PROJECTION.top)
        return None
    projection = given_file(path, dim)
    workspace.put_bytes(LAYOUT.PROJECTION.key, projection.to_bytes())  # what was checked, not a second read of path
    return projection.describe()


def in_workspace(workspace: Workspace, dim: int) -> Projection | None:
    if not workspace.exists(LAYOUT.PROJECTION.key):
        return None
    try:
        projection = projection_from_bytes(workspace.store.get_bytes(LAYOUT.PROJECTION.key))
    except ArtifactError as exc:
        raise StepFailed(f"the workspace's {LAYOUT.PROJECTION.path}: {exc}") from None
    return checked_dim(projection, dim, f"in the workspace's {LAYOUT.PROJECTION.path}")


def learned_kind(count: int, settings: Settings) -> str:
    """The kind of projection :func:`fitted` learns for ``count`` vectors."""
    if not settings.pipeline.whitening_dims or count < settings.pipeline.whitening_min_items:
        return IdentityProjection.kind
    return PcaWhitening.kind


def fitted(vectors: StoredVectors, settings: Settings) -> Projection:
    """PCA-whitening learned on (a seeded sample of) the vectors; the identity when it is off or the index small."""
    if learned_kind(len(vectors), settings) == IdentityProjection.kind:
        return IdentityProjection(vectors.shape[1])
    rows = np.arange(len(vectors))
    if len(rows) > FIT_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), FIT_SAMPLE, replace=False))
    return PcaWhitening.fit(vectors.take(rows), settings.pipeline.whitening_dims, settings.pipeline.whitening_shrinkage)


def given(workspace: Workspace, path: str | None, dim: int) -> Projection | None:
    """build_index's given projection: ``path`` wins, else the workspace's; None: learn one (:func:`fitted`)."""
    return given_file(path, dim) if path else in_workspace(workspace, dim)
