"""Model versions for tests: a seeded linear head, written, sealed and published by the real protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagesearch import model_versions
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.manifest import ModelInfo
from imagesearch.projection import LinearHead
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings


def head(seed: int, in_dim: int = 24, out_dim: int = 8) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(mean=rng.normal(size=in_dim).astype(np.float32) * 0.1,
                      weight=rng.normal(size=(in_dim, out_dim)).astype(np.float32))


def backbone_of(settings: Settings) -> ModelInfo:
    """The model runs with these settings embed with."""
    return EmbedderConfig.for_settings(settings).model_info()


def publish_version(repo: ModelRepository, scratch: Path, version: str, backbone: ModelInfo, *, passed: bool = True,
                    seed: int = 1, projection: LinearHead | None = None) -> LinearHead:
    """Publish model ``version`` (a head for ``backbone``'s features, seeded by ``seed``); the head."""
    projection = projection or head(seed, backbone.dim)
    model_versions.write_version(scratch / version, version=version, created_at="2026-01-01T00:00:00+00:00",
                                 projection=projection, backbone=backbone,
                                 training={"index_version": "20260101T000000Z", "params": {"epochs": 3}},
                                 metrics={"near_duplicate_top1": 0.95}, gate={"passed": passed}, item_count=40)
    model_versions.publish(repo, scratch / version)
    return projection
