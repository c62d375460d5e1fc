"""Embedding throughput on this machine: images/s per batch size; NCHW vs channels-last, batch norms as layers
vs folded into the convs (what the embedder runs).

    PYTHONPATH=. .venv/bin/python bench/embed.py [--repeats 3]

Also times decoding + preprocessing alone (seconds per image) and checks that the variants give
the same vectors (cosine within 1e-4). Never run as a test.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
import torch
from PIL import Image
from skimage import data

from imagesearch.embedder import Embedder
from imagesearch.model import load_backbone
from imagesearch.preprocess import preprocess_bytes

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")
BATCH_SIZES = (1, 8, 32, 64)


def jpegs() -> list[bytes]:
    out = []
    for name in PHOTOS:
        buffer = io.BytesIO()
        Image.fromarray(getattr(data, name)()).convert("RGB").save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    images = jpegs()
    per_image = best_of(args.repeats, lambda: [preprocess_bytes(jpeg) for jpeg in images]) / len(images)
    arrays = [preprocess_bytes(images[i % len(images)]) for i in range(max(BATCH_SIZES))]

    folded = Embedder()
    channels_last = Embedder()
    channels_last.network = load_backbone(folded.config.backbone).to(memory_format=torch.channels_last)
    nchw = Embedder()
    nchw.network = load_backbone(folded.config.backbone)
    nchw._to_tensor = lambda batch: torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))  # type: ignore[method-assign]
    variants = {"eager NCHW, batch norms": nchw, "eager channels-last, batch norms": channels_last,
                "eager channels-last, batch norms folded (the embedder)": folded}

    reference = nchw.embed_arrays(np.stack(arrays[:8]))
    print(f"torch {torch.__version__}, intra-op threads: {torch.get_num_threads()}, CPU cores: {os.cpu_count()}")
    print(f"decode + preprocess (JPEG ~0.3-1.4 Mpx -> 224x224): {per_image * 1000:.1f} ms/image")
    print()
    print(f"| variant | {' | '.join(f'batch {b} img/s' for b in BATCH_SIZES)} | max cos diff vs NCHW |")
    print(f"|---|{'---|' * len(BATCH_SIZES)}---|")
    for name, embedder in variants.items():
        rates = []
        for batch_size in BATCH_SIZES:
            batch = np.stack(arrays[:batch_size])
            embedder.embed_arrays(batch)  # warm-up
            rates.append(batch_size / best_of(args.repeats, lambda b=batch, e=embedder: e.embed_arrays(b)))
        diff = float(np.max(1 - np.sum(embedder.embed_arrays(np.stack(arrays[:8])) * reference, axis=1)))
        print(f"| {name} | {' | '.join(f'{rate:.1f}' for rate in rates)} | {diff:.2e} |")


if __name__ == "__main__":
    main()
