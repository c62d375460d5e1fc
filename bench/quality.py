"""Search quality of the retrieval tricks, side by side, with a fixed seed.

    PYTHONPATH=. .venv/bin/python bench/quality.py [--tux-queries 500] [--fashion-items 2000]

Near-duplicate top-1/top-10 on the tuxpaint demo catalog (resize 0.7 + 5 % crop + 5° rotation +
brightness 1.15 + JPEG 60, as `evaluate` does) and category precision@10 on a Fashion-MNIST sample,
for: centre crop vs pad-to-square, average vs GeM pooling, PCA-whitening learned on the indexed
vectors, flip-averaged queries. Needs `make demo`'s catalogs (python -m imagesearch.demo_catalog ...).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from imagesearch import uri_reader
from imagesearch.augment import near_duplicate
from imagesearch.backbones import registered
from imagesearch.catalog import read_catalog
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.errors import ImageError
from imagesearch.index import exact_search
from imagesearch.input_policy import InputPolicy
from imagesearch.preprocess import decode_image
from imagesearch.projection import PcaWhitening
from imagesearch.settings import DATA_DIR, get_settings
from imagesearch.vectors import l2_normalize


@dataclass
class Images:
    originals: list[bytes]
    categories: list[str]


def load(catalog: str, limit: int, seed: int, per_class: bool = False) -> Images:
    settings = get_settings()
    items = read_catalog(catalog, InputPolicy.for_catalogs(settings.inputs)).items
    policy = InputPolicy.for_images(settings.inputs, catalog)
    rng = np.random.default_rng(seed)
    if limit < len(items):
        items = [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
    originals, categories = [], []
    for item in items:
        data = uri_reader.read_bytes(item.image_uri, policy)
        if not usable(data):
            continue
        originals.append(data)
        categories.append(item.category)
    return Images(originals, categories)


def usable(data: bytes) -> bool:
    try:
        decode_image(data)
    except ImageError:
        return False
    return True


def embed(embedder: Embedder, images: list[bytes], transform: Callable[[Image.Image], bytes] | None = None) -> np.ndarray:
    arrays = []
    for data in images:
        if transform is not None:
            data = transform(Image.open(io.BytesIO(data)))
        arrays.append(embedder.preprocess(data))
    return embedder.embed_many(arrays, 32)


def flip(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    ImageOps.mirror(image.convert("RGBA")).save(buffer, "PNG")
    return buffer.getvalue()


def near_dup_rates(database: np.ndarray, queries: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    found, _ = exact_search(database, queries, 10)
    return float(np.mean(found[:, 0] == expected)), float(np.mean([e in row for e, row in zip(expected, found, strict=True)]))


def precision_at_10(vectors: np.ndarray, categories: list[str]) -> float:
    found, _ = exact_search(vectors, vectors, 11)
    labels = np.asarray(categories)
    neighbours = found[:, 1:]
    return float(np.mean(labels[neighbours] == labels[:, None]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tux-queries", type=int, default=500)
    parser.add_argument("--fashion-items", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    tux = load(str(DATA_DIR / "catalogs/tuxpaint/catalog.csv"), 10**9, args.seed)
    fashion = load(str(DATA_DIR / "catalogs/fashion-mnist/catalog.csv"), args.fashion_items, args.seed)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(len(tux.originals), min(args.tux_queries, len(tux.originals)), replace=False))
    # As in `evaluate`: a copy shrunk below the minimum image side is not a usable query.
    sample = np.asarray([i for i in sample if usable(near_duplicate(Image.open(io.BytesIO(tux.originals[i]))))])
    queries = [tux.originals[i] for i in sample]

    rows = []
    backbone = registered(get_settings().pipeline.backbone)  # IMAGESEARCH_BACKBONE
    configs = {
        "centre crop + avg (baseline)": EmbedderConfig.for_backbone(backbone, fit="crop", pooling="avg"),
        "pad + avg": EmbedderConfig.for_backbone(backbone, fit="pad", pooling="avg"),
        "crop + GeM": EmbedderConfig.for_backbone(backbone, fit="crop", pooling="gem"),
        "pad + GeM": EmbedderConfig.for_backbone(backbone, fit="pad", pooling="gem"),
    }
    for name, config in configs.items():
        embedder = Embedder(config)
        database = embed(embedder, tux.originals)
        copies = embed(embedder, queries, near_duplicate)
        fashion_vectors = embed(embedder, fashion.originals)
        rows.append((name, *near_dup_rates(database, copies, sample), precision_at_10(fashion_vectors, fashion.categories)))
        if config.pooling == "gem" and config.preprocess.fit == "pad":
            flipped = embed(embedder, queries, lambda image: flip(Image.open(io.BytesIO(near_duplicate(image)))))
            averaged = l2_normalize(copies + flipped)
            rows.append((f"{name} + flip-averaged queries", *near_dup_rates(database, averaged, sample), float("nan")))
            for dims, shrinkage in ((512, 0.001), (256, 0.3), (512, 0.3)):
                tux_white = PcaWhitening.fit(database, dims, shrinkage)
                fashion_white = PcaWhitening.fit(fashion_vectors, dims, shrinkage)
                rows.append((
                    f"{name} + PCA-whitening {dims} (shrinkage {shrinkage:g})",
                    *near_dup_rates(tux_white.apply(database), tux_white.apply(copies), sample),
                    precision_at_10(fashion_white.apply(fashion_vectors), fashion.categories),
                ))
    print(f"tuxpaint: {len(tux.originals)} items, {len(sample)} near-duplicate queries; "
          f"Fashion-MNIST: {len(fashion.originals)} items (seed {args.seed})\n")
    print("| configuration | near-dup top-1 | near-dup top-10 | Fashion-MNIST category P@10 |")
    print("|---|---|---|---|")
    for name, top1, top10, precision in rows:
        print(f"| {name} | {top1:.4f} | {top10:.4f} | {'—' if np.isnan(precision) else f'{precision:.4f}'} |")


if __name__ == "__main__":
    main()
