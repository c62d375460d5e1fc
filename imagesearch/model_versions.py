"""Model versions: the training DAG's heads in the model repository, and which one an index is built with.

    models/<version>/projection.npz   the head's exported weights (numpy only: imagesearch.projection)
    models/<version>/metrics.json     its held-out evaluation
    models/<version>/manifest.json    backbone model, projection record, training data and params, metrics, gate
    models/<version>/_COMMIT          written last (the protocol of index versions: imagesearch.artifacts)
    models/pins/pin.yaml              present while an operator pins one (``python -m tasks.operations.models``)
    models/pins/reverted.yaml         versions a rollback reverted: never chosen automatically again

The model an index run uses (:func:`choose`): the run's ``model_version`` param, else ``IMAGESEARCH_MODEL_VERSION``,
else the pin, else the newest version that passed its gate with the run's backbone and was not reverted. ``none``
(at any of the first three) means no head: the index learns its PCA-whitening as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagesearch import artifacts
from imagesearch.artifacts import MODELS
from imagesearch.errors import ArtifactError, ImageSearchError, RepositoryUnavailableError
from imagesearch.manifest import Manifest, ModelInfo, check_version
from imagesearch.pins import PIN_FILE, REVERTED_FILE, Pin, Reverted, parse_pin, parse_reverted, pin_text, reverted_text
from imagesearch.projection import PROJECTION, Projection
from imagesearch.repository import ModelRepository

METRICS = "metrics.json"
PINS = f"{MODELS}/pins"
PIN_KEY = f"{PINS}/{PIN_FILE}"
REVERTED_KEY = f"{PINS}/{REVERTED_FILE}"
NO_MODEL = "none"  # a choice of no head


class ModelChoiceError(ImageSearchError):
    """The model version asked for cannot be used (not committed, another backbone, not a version id)."""


def write_version(directory: Path, *, version: str, created_at: str, projection: Projection, backbone: ModelInfo,
                  training: dict[str, Any], metrics: dict[str, float], gate: dict[str, Any],
                  item_count: int) -> Manifest:
    """Write a model version's files into ``directory`` and seal it (``manifest.json``; no ``_COMMIT`` yet)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PROJECTION).write_bytes(projection.to_bytes())
    (directory / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    manifest = Manifest(version=check_version(version), created_at=created_at, item_count=item_count, model=backbone,
                        metrics=metrics, gate=gate, training={**training, "projection": projection.describe()})
    return artifacts.seal(directory, manifest)


def publish(repo: ModelRepository, directory: Path) -> tuple[Manifest, bool]:
    """Publish a sealed model version, ``_COMMIT`` last (immutable; re-publishing the same one is a no-op)."""
    return artifacts.publish(repo, directory, MODELS)


def versions(repo: ModelRepository) -> list[Manifest]:
    """Every committed model version's manifest, oldest first."""
    return [artifacts.read_manifest(repo, version, MODELS) for version in artifacts.committed_versions(repo, MODELS)]


def read_pin(repo: ModelRepository) -> Pin | None:
    return parse_pin(repo.get_bytes(PIN_KEY).decode()) if repo.exists(PIN_KEY) else None


def read_reverted(repo: ModelRepository) -> dict[str, Reverted]:
    return parse_reverted(repo.get_bytes(REVERTED_KEY).decode()) if repo.exists(REVERTED_KEY) else {}


def write_pin(repo: ModelRepository, pin: Pin) -> None:
    """Pin a version id, or ``none`` (no head)."""
    if pin.version != NO_MODEL:
        check_version(pin.version)
    repo.put_bytes(PIN_KEY, pin_text(pin).encode())


def remove_pin(repo: ModelRepository) -> None:
    repo.delete_key(PIN_KEY)


def add_reverted(repo: ModelRepository, entries: list[Reverted], restored: str = "") -> None:
    repo.put_bytes(REVERTED_KEY, reverted_text(read_reverted(repo), entries, restored).encode())


def newest_gated(repo: ModelRepository, model_id: str) -> Manifest | None:
    """The newest version that passed its gate, trained on ``model_id``'s features and not reverted."""
    reverted = read_reverted(repo)
    usable = [manifest for manifest in versions(repo) if manifest.passed_gate
              and manifest.model.model_id == model_id and manifest.version not in reverted]
    return usable[-1] if usable else None


@dataclass(frozen=True)
class ModelChoice:
    version: str | None  # None: no head
    reason: str  # which rule chose it, for the log and the run facts

    def describe(self) -> str:
        return f"model version {self.version or NO_MODEL} ({self.reason})"


def usable(repo: ModelRepository, version: str, model_id: str) -> Manifest:
    """The manifest of committed model ``version`` if it was trained on ``model_id``'s features; else refused."""
    try:
        manifest = artifacts.read_manifest(repo, check_version(version), MODELS)
    except RepositoryUnavailableError:
        raise
    except ArtifactError as exc:
        raise ModelChoiceError(f"model version {version!r}: {exc}") from None
    if manifest.model.model_id != model_id:
        raise ModelChoiceError(f"model version {version} was trained on {manifest.model.model_id}'s features; this "
                               f"run embeds with {model_id}")
    return manifest


def choose(repo: ModelRepository, model_id: str, param: str = "", setting: str = "") -> ModelChoice:
    """The run's model version (see the module's doc); an explicit or pinned one must be usable."""
    pin = read_pin(repo)
    for given, reason in ((param.strip(), "the run's model_version"), (setting.strip(), "IMAGESEARCH_MODEL_VERSION"),
                          (pin.version if pin else "", f"pinned: {pin.describe()}" if pin else "")):
        if given == NO_MODEL:
            return ModelChoice(None, reason)
        if given:
            return ModelChoice(usable(repo, given, model_id).version, reason)
    newest = newest_gated(repo, model_id)
    if newest is None:
        return ModelChoice(None, f"no gated model version for {model_id}")
    return ModelChoice(newest.version, "the newest gated version")


def fetch_projection(repo: ModelRepository, version: str, model_id: str, target: Path) -> Path:
    """Download and verify model ``version`` into ``target``; the path of its ``projection.npz``."""
    artifacts.fetch(repo, version, target, model_id, MODELS)
    return target / PROJECTION


def summary(manifest: Manifest) -> dict[str, Any]:
    """What ``models list`` and the run facts show of a version."""
    return {"version": manifest.version, "backbone": manifest.model.model_id, "passed_gate": manifest.passed_gate,
            "metrics": manifest.metrics, "projection": manifest.training.get("projection", {}),
            "trained_on": manifest.training.get("index_version")}

