"""Embed one work shard's new images with the core embedder (reused vectors are gathered by build_index)."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
import numpy as np

from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.preprocess import normalize
from tasks import cli
from tasks.workspace import LAYOUT

log = logging.getLogger("embed")


def embed_pixels(embedder: Embedder, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 (n, S, S, 3) fitted images -> (n, dim) vectors, batch by batch with timing logged."""
    outputs = [np.zeros((0, embedder.dim), np.float32)]
    for start in range(0, len(pixels), batch_size):
        began = time.perf_counter()
        batch = normalize(pixels[start : start + batch_size], embedder.config.preprocess)
        outputs.append(embedder.embed_arrays(batch))
        elapsed = time.perf_counter() - began
        log.info("batch %d-%d of %d: %.2fs (%.1f img/s)", start, start + len(batch), len(pixels), elapsed, len(batch) / elapsed)
    return np.concatenate(outputs)


def embed(context: cli.StepContext) -> dict[str, Any]:
    """Vectors for the shard's images with new bytes; build_index gathers the reused ones, once per run."""
    settings, workspace, shard = context.settings, context.workspace, context.shard
    records = workspace.read_jsonl(LAYOUT.PREPROCESSED.of(shard))
    pixels = workspace.read_array(LAYOUT.PIXELS.of(shard))
    config = EmbedderConfig.from_dict(context.run["embedder"])  # the model the run planned, as recorded
    embedder = Embedder(config, device=context.args.device, threads=settings.pipeline.torch_threads)
    fresh = embed_pixels(embedder, pixels, settings.pipeline.embed_batch_size)
    workspace.write_array(LAYOUT.EMBEDDINGS.of(shard), fresh)
    workspace.write_json(LAYOUT.MODEL.of(shard), msgspec.to_builtins(embedder.info))
    reused = sum(record["status"] == "reuse" for record in records)
    return {"shard": shard, "items": len(records), "embedded": len(fresh), "reused": reused,
            "model_id": embedder.model_id, "device": str(embedder.device)}


main = cli.entry("embed", embed, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
