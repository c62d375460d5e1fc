"""The embedder: the one network + pooling that index time and query time share."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imagesearch.embedder_config import EmbedderConfig
from imagesearch.manifest import ModelInfo
from imagesearch.model import PooledFeatures, fold_batch_norms, load_backbone
from imagesearch.preprocess import preprocess_bytes
from imagesearch.runtimes import ConversionCache, build_runner, to_device_tensor
from imagesearch.settings import Runtime, get_settings
from imagesearch.vectors import l2_normalize

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Embedder:
    """Images -> L2-normalised float32 vectors. ``model_id`` names the backbone, pooling and preprocessing.

    ``config`` is the model a run recorded or a version was built with; without one, that of new runs
    (``IMAGESEARCH_BACKBONE``). ``runtime`` runs the network (:mod:`imagesearch.runtimes`); without one,
    ``IMAGESEARCH_EMBEDDER_RUNTIME``'s. Every runtime gives the same vectors (within 1e-3 cosine of torch's), so
    the model id does not name it."""

    def __init__(self, config: EmbedderConfig | None = None, device: str = "auto", threads: int = 0,
                 runtime: Runtime | None = None) -> None:
        self.config = config or EmbedderConfig.for_settings(get_settings())
        self.model_id = self.config.model_id
        self.dim = self.config.backbone.feature_dim
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.network = fold_batch_norms(load_backbone(self.config.backbone)).to(self.device)
        if self.device.type == "cpu":
            self.network = self.network.to(memory_format=torch.channels_last)
        self.runtime: Runtime = runtime or get_settings().pipeline.embedder_runtime
        pooled = PooledFeatures(self.network, self.config.pooling, self.config.gem_p)
        cache_dir = get_settings().pipeline.openvino_cache_dir
        cache = ConversionCache(Path(cache_dir), self.model_id) if cache_dir else None
        self._run = build_runner(pooled, self.config.preprocess.size, self.runtime, threads, self.device, cache)

    @property
    def info(self) -> ModelInfo:
        return self.config.model_info()

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) preprocessed arrays -> (N, dim) unit vectors."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(self._run(batch))

    def embed_many(self, arrays: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Batched inference with per-batch timing in the log."""
        outputs = []
        for start in range(0, len(arrays), batch_size):
            began = time.perf_counter()
            outputs.append(self.embed_arrays(np.stack(arrays[start : start + batch_size])))
            elapsed = time.perf_counter() - began
            count = len(outputs[-1])
            log.debug("embedded batch of %d in %.3fs (%.1f img/s)", count, elapsed, count / max(elapsed, 1e-9))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.dim), dtype=np.float32)

    def preprocess(self, data: bytes) -> np.ndarray:
        return preprocess_bytes(data, self.config.preprocess)

    def embed_bytes(self, images: Sequence[bytes]) -> np.ndarray:
        return self.embed_arrays(np.stack([self.preprocess(data) for data in images]))

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """ImageNet logits, used to prove the weights are loaded right."""
        with torch.inference_mode():
            return self.network(to_device_tensor(batch, self.device)).float().cpu().numpy()  # type: ignore[no-any-return]

