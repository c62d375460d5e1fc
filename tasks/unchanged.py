"""Hours with nothing to do: when ``snapshot`` finds the served version built from this very snapshot with
this model and this projection (:func:`unchanged_since`), every later step that ``skips_when_unchanged`` says so, does nothing and
succeeds (no version published, no commit, no rollout)."""

from __future__ import annotations

import logging
from typing import Any

from imagesearch.artifacts import read_manifest
from imagesearch.errors import ArtifactError
from imagesearch.projection import IdentityProjection, PcaWhitening
from imagesearch.repository import ModelRepository

# What build_index learns on the version's vectors when the run gives it no projection.
FITTED_KINDS = frozenset({IdentityProjection.kind, PcaWhitening.kind})


def message(info: dict[str, Any]) -> str:
    projection = info.get("projection")
    projected = f"projection {projection['projection_id']}" if projection else "a learned projection"
    return (f"nothing changed: catalog snapshot {info['snapshot_sha256'][:12]}, model {info['model_id'][:12]} and "
            f"{projected} are those of the served version {info['serving_version']}; nothing is built, published or "
            "committed")


def summary(info: dict[str, Any], step: str) -> dict[str, Any] | None:
    """The step's summary when the run has nothing to do (logged), else None."""
    if not info.get("nothing_changed"):
        return None
    logging.getLogger(step).info("%s", message(info))
    return {"nothing_changed": True, "serving_version": info["serving_version"], "message": message(info)}


def same_projection(served: dict[str, Any] | None, planned: dict[str, Any] | None) -> bool:
    """Whether a version whose manifest records ``served`` (None: published before projections, so learned) is
    projected as a run planning ``planned`` (None: learn one) would be: the same given projection, or both learned
    (a learned projection is a function of the snapshot and the model, which are compared beside it)."""
    if served is not None and not isinstance(served, dict):
        return False
    if planned is None:
        return served is None or served.get("kind") in FITTED_KINDS
    return served is not None and served.get("projection_id") == planned["projection_id"]


def unchanged_since(repo: ModelRepository, serving: str | None, snapshot_hash: str, model_id: str,
                    projection: dict[str, Any] | None = None) -> bool:
    """Whether the served version was built from this very snapshot with this model and projection (``projection``:
    what the run gives build_index, as :meth:`~imagesearch.projection.Projection.describe` says; None: learned)."""
    if not serving:
        return False
    try:
        manifest = read_manifest(repo, serving)
    except ArtifactError as exc:
        logging.getLogger("snapshot").warning("the served version %s is not readable here (%s): building a new version",
                                              serving, exc)
        return False
    return (manifest.catalog.get("snapshot_sha256") == snapshot_hash and manifest.model.model_id == model_id
            and same_projection(manifest.index.get("projection"), projection))
