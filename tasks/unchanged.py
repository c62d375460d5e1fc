"""Hours with nothing to do: when ``snapshot`` finds the served version built from this very snapshot with
this model (:func:`unchanged_since`), every later step that ``skips_when_unchanged`` says so, does nothing and
succeeds (no version published, no commit, no rollout)."""

from __future__ import annotations

import logging
from typing import Any

from imagesearch.artifacts import read_manifest
from imagesearch.errors import ArtifactError
from imagesearch.repository import ModelRepository


def message(info: dict[str, Any]) -> str:
    return (f"nothing changed: catalog snapshot {info['snapshot_sha256'][:12]} and model {info['model_id'][:12]} are "
            f"those of the served version {info['serving_version']}; nothing is built, published or committed")


def summary(info: dict[str, Any], step: str) -> dict[str, Any] | None:
    """The step's summary when the run has nothing to do (logged), else None."""
    if not info.get("nothing_changed"):
        return None
    logging.getLogger(step).info("%s", message(info))
    return {"nothing_changed": True, "serving_version": info["serving_version"], "message": message(info)}


def unchanged_since(repo: ModelRepository, serving: str | None, snapshot_hash: str, model_id: str) -> bool:
    """Whether the served version was built from this very snapshot with this model."""
    if not serving:
        return False
    try:
        manifest = read_manifest(repo, serving)
    except ArtifactError as exc:
        logging.getLogger("snapshot").warning("the served version %s is not readable here (%s): building a new version",
                                              serving, exc)
        return False
    return manifest.catalog.get("snapshot_sha256") == snapshot_hash and manifest.model.model_id == model_id
