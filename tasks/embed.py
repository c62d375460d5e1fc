"""Embed one shard with the core embedder; reuse the previous version's vectors for unchanged images."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import msgspec
import numpy as np

from imagesearch.embedder import Embedder
from imagesearch.preprocess import normalize
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks import cli
from tasks.previous import previous_embeddings
from tasks.workspace import Workspace, shard_key

log = logging.getLogger("embed")


def embed_pixels(embedder: Embedder, pixels: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 (n, S, S, 3) fitted images -> (n, dim) vectors, batch by batch with timing logged."""
    outputs = [np.zeros((0, embedder.dim), np.float32)]
    for start in range(0, len(pixels), batch_size):
        began = time.perf_counter()
        batch = np.stack([normalize(image) for image in pixels[start : start + batch_size]])
        outputs.append(embedder.embed_arrays(batch))
        elapsed = time.perf_counter() - began
        log.info("batch %d-%d of %d: %.2fs (%.1f img/s)", start, start + len(batch), len(pixels), elapsed, len(batch) / elapsed)
    return np.concatenate(outputs)


def embed(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace)
    info = workspace.run_info()
    records = workspace.read_jsonl(shard_key("preprocess", args.shard, "items.jsonl"))
    pixels = workspace.read_array(shard_key("preprocess", args.shard, "pixels.npz"))
    embedder = Embedder(device=args.device, threads=settings.torch_threads)
    fresh = embed_pixels(embedder, pixels, args.batch_size or settings.embed_batch_size)

    # preprocess recorded each unchanged image's row in the previous version: only its vectors are fetched.
    reuse = [position for position, record in enumerate(records) if record["status"] == "reuse"]
    vectors = np.zeros((len(records), embedder.dim), np.float32)
    vectors[[position for position, record in enumerate(records) if record["status"] != "reuse"]] = fresh
    if reuse:
        repo = open_repository(args.repository or settings.model_repository)
        old = previous_embeddings(repo, info["previous_version"], embedder.model_id)
        vectors[reuse] = old[[records[position]["reuse_row"] for position in reuse]]
    workspace.write_array(shard_key("embed", args.shard, "embeddings.npy"), vectors)
    workspace.write_json(shard_key("embed", args.shard, "model.json"), msgspec.to_builtins(embedder.info))
    return {"shard": args.shard, "items": len(records), "embedded": len(fresh), "reused": len(reuse),
            "model_id": embedder.model_id, "device": str(embedder.device)}


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("embed", __doc__ or "")
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--repository", help="model repository URI; default from settings")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=0)
    return cli.run("embed", embed, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
