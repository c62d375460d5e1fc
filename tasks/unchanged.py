"""Hours with nothing to do: when ``snapshot`` found the served version built from this very snapshot with
this model, every later step says so, does nothing and succeeds (no version published, no commit, no rollout)."""

from __future__ import annotations

import logging
from typing import Any


def message(info: dict[str, Any]) -> str:
    return (f"nothing changed: catalog snapshot {info['snapshot_sha256'][:12]} and model {info['model_id'][:12]} are "
            f"those of the served version {info['serving_version']}; nothing is built, published or committed")


def summary(info: dict[str, Any], step: str) -> dict[str, Any] | None:
    """The step's summary when the run has nothing to do (logged), else None."""
    if not info.get("nothing_changed"):
        return None
    logging.getLogger(step).info("%s", message(info))
    return {"nothing_changed": True, "serving_version": info["serving_version"], "message": message(info)}
