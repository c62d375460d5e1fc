"""Embedding throughput on this machine, torch vs OpenVINO side by side: images/s per batch size, each runtime's
start-up (network load, and OpenVINO's conversion, or its read from ``IMAGESEARCH_OPENVINO_CACHE_DIR`` where an
earlier run cached it: set that empty to time the conversion; bench/openvino_cache.py compares the two) and how
far its vectors are from torch's.

    PYTHONPATH=. .venv/bin/python bench/embed.py [--repeats 3]

Both are the production embedder (:class:`imagesearch.embedder.Embedder`, folded batch norms, channels-last in
torch), built in this run; the cells alternate between them so a shift in the machine's load hits both alike.
Each cell is the best of ``--repeats`` passes over one batch, after a warm-up pass. The deviation is the largest
1 - cosine against torch over 32 real photos (scikit-image's, as JPEG). Also times decoding + preprocessing
alone. Prints the load average before and after. Never run as a test.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from skimage import data

from imagesearch.embedder import Embedder
from imagesearch.preprocess import preprocess_bytes
from imagesearch.runtimes import RUNTIMES, cosine_deviation
from imagesearch.settings import Runtime

PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")
BATCH_SIZES = (1, 8, 32)


def jpegs() -> list[bytes]:
    out = []
    for name in PHOTOS:
        buffer = io.BytesIO()
        Image.fromarray(getattr(data, name)()).convert("RGB").save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return min(times)


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {load()}")
    images = jpegs()
    per_image = best_of(args.repeats, lambda: [preprocess_bytes(jpeg) for jpeg in images]) / len(images)
    arrays = np.stack([preprocess_bytes(images[i % len(images)]) for i in range(max(BATCH_SIZES))])

    embedders: dict[Runtime, Embedder] = {}
    start_up: dict[Runtime, float] = {}
    for runtime in RUNTIMES:
        began = time.perf_counter()
        embedders[runtime] = Embedder(device="cpu", runtime=runtime)  # type: ignore[arg-type]
        start_up[runtime] = time.perf_counter() - began  # type: ignore[index]
    rates: dict[Runtime, list[float]] = {runtime: [] for runtime in embedders}
    for batch_size in BATCH_SIZES:
        batch = arrays[:batch_size]
        for runtime, embedder in embedders.items():
            embedder.embed_arrays(batch)  # warm-up
            rates[runtime].append(batch_size / best_of(args.repeats, lambda e=embedder, b=batch: e.embed_arrays(b)))
    reference = embedders["torch"].embed_arrays(arrays)

    print(f"torch {torch.__version__}, intra-op threads: {torch.get_num_threads()}, CPU cores: {os.cpu_count()}")
    print(f"decode + preprocess (JPEG ~0.3-1.4 Mpx -> 224x224): {per_image * 1000:.1f} ms/image")
    print()
    print(f"| runtime | start-up s | {' | '.join(f'batch {b} img/s' for b in BATCH_SIZES)} | max 1 - cos vs torch "
          "| max abs component diff |")
    print(f"|---|---:|{'---:|' * len(BATCH_SIZES)}---:|---:|")
    for runtime, embedder in embedders.items():
        vectors = embedder.embed_arrays(arrays)
        deviation, component = cosine_deviation(reference, vectors), float(np.max(np.abs(vectors - reference)))
        cells = " | ".join(f"{rate:.1f}" for rate in rates[runtime])
        print(f"| {runtime} | {start_up[runtime]:.1f} | {cells} | {deviation:.2e} | {component:.2e} |")
    speedups = " / ".join(f"{ov / base:.2f}x" for ov, base in zip(rates["openvino"], rates["torch"], strict=True))
    print()
    print(f"openvino / torch at batch {' / '.join(map(str, BATCH_SIZES))}: {speedups}")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
