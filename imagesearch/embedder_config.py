"""What defines the embedder, without torch: its backbone, pooling and preprocessing, and the model id.

The pipeline records :class:`EmbedderConfig` in the run (``snapshot/run.json``) and in each version's manifest
(``model.config``); every step that decodes or embeds images builds its preprocessing from that record, and the
search server builds its embedder from the served version's (:func:`servable_config`).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from imagesearch.backbones import BackboneSpec, Pooling, registered, weights_file
from imagesearch.errors import ArtifactError, BackboneError
from imagesearch.manifest import ModelInfo
from imagesearch.preprocess import CAPS, PreprocessConfig
from imagesearch.records import RecordError, read_record

if TYPE_CHECKING:
    from imagesearch.settings import Settings


class EmbedderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    backbone: BackboneSpec
    preprocess: PreprocessConfig
    pooling: Pooling
    gem_p: float

    def __post_init__(self) -> None:
        if self.preprocess.normalisation != self.backbone.normalisation:
            raise ValueError(f"the preprocessing normalises with {self.preprocess.normalisation}, but the weights of "
                             f"{self.backbone.name} expect {self.backbone.normalisation}")

    @classmethod
    def for_backbone(cls, spec: BackboneSpec, fit: Literal["pad", "crop"] = "pad", pooling: Pooling | None = None,
                     size: int | None = None) -> EmbedderConfig:
        """The backbone's input size (unless ``size``), normalisation and pooling (unless ``pooling``)."""
        preprocess = PreprocessConfig(size=size or spec.input_size, fit=fit, normalisation=spec.normalisation)
        return cls(spec, preprocess, pooling or spec.pooling, spec.gem_p)

    @classmethod
    def for_settings(cls, settings: Settings) -> EmbedderConfig:
        """The embedder of new runs: the backbone ``IMAGESEARCH_BACKBONE`` names, with its own defaults."""
        return cls.for_backbone(registered(settings.pipeline.backbone))

    @property
    def tag(self) -> str:
        pooling = f"gem{self.gem_p:g}" if self.pooling == "gem" else "avg"
        return f"{pooling}-{self.preprocess.tag}"

    def identity(self) -> dict[str, Any]:
        """Everything that makes the vectors what they are: the whole record less the caps on what is decoded."""
        record = self.to_dict()
        record["preprocess"] = {key: value for key, value in record["preprocess"].items() if key not in CAPS}
        return record

    @property
    def model_id(self) -> str:
        """``<backbone>-<weights sha256[:12]>-<pooling>-<preprocessing>-<digest of the whole identity>``: readable,
        and different whenever any field of the backbone's spec, the pooling or the preprocessing differs."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
        return f"{self.backbone.name}-{self.backbone.weights.sha256[:12]}-{self.tag}-{digest}"

    def model_info(self) -> ModelInfo:
        """What a manifest records of the model (``manifest.model``)."""
        return ModelInfo(self.backbone.name, self.backbone.weights.sha256, self.model_id, self.backbone.feature_dim,
                         self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The record exactly as JSON holds it (lists, not tuples)."""
        return msgspec.json.decode(msgspec.json.encode(self))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, record: object) -> EmbedderConfig:
        """The config a run or manifest recorded; an unknown or missing key is an error, never a silent default."""
        return read_record(record, cls, "the embedder config")


def servable_config(model: ModelInfo, version: str) -> EmbedderConfig:
    """The embedder config of a version's model, once this image can embed with it: the manifest records a
    backbone, one this image's registry knows with the very same spec (the weights' sha256 included), whose weights
    package is installed with that file; and the recorded model id is the one the config derives. Else
    :class:`BackboneError` (or :class:`ArtifactError` for a record that is not a config) saying which."""
    if "backbone" not in model.config:
        raise BackboneError(f"version {version} records no backbone (model {model.model_id}, built before backbones "
                            "were recorded): this image cannot tell which network embeds its queries. Rebuild the "
                            "version (run the pipeline with --full-rebuild) and serve the new one")
    try:
        config = EmbedderConfig.from_dict(model.config)
    except (RecordError, ValueError) as exc:
        raise ArtifactError(f"version {version}: model.config is not an embedder config: {exc}") from None
    spec = config.backbone
    known = registered(spec.name)
    if spec.weights.sha256 != known.weights.sha256:
        raise BackboneError(f"version {version} was embedded with {spec.name} weights of sha256 {spec.weights.sha256}; "
                            f"this image's {spec.name} has {known.weights.sha256}")
    if spec != known:
        raise BackboneError(f"version {version} records backbone {spec.name} as {msgspec.to_builtins(spec)}; this "
                            f"image's registry has {msgspec.to_builtins(known)}")
    derived = config.model_info()
    if (model.name, model.weights_sha256, model.model_id, model.dim) != \
            (derived.name, derived.weights_sha256, derived.model_id, derived.dim):
        raise ArtifactError(f"version {version} names model {model.model_id} ({model.name}, {model.dim} dims, "
                            f"weights {model.weights_sha256[:12]}), but its model.config derives {derived.model_id}")
    weights_file(spec)
    return config
