"""A head trained on the catalog against today's PCA-whitening and raw features, on items training never saw.

    PYTHONPATH=. .venv/bin/python bench/model.py [--catalogs tuxpaint fashion-mnist photos] [--fashion-items 1500]
    PYTHONPATH=. .venv/bin/python bench/model.py --million      # train_head's time and peak RSS on 1M x 1280

Per catalog (each with categories): its items are split by a hash of their id (imagesearch.training.evaluation.
held_out, --held-out of them); the head is trained (imagesearch.training.head.train_head, default HeadConfig) on
the others' raw vectors, their categories and --copies training copies of each (imagesearch.augment.
training_distortions). Today's model is the PCA-whitening build_index learns on every indexed vector (512-d,
shrinkage 0.3). Queries: each held-out item's copy under every EVALUATION_DISTORTIONS transform (parameters training
never draws), searched among all items; each held-out item's category P@10 among all items with a category.
Exact search throughout. Training runs in a subprocess of its own, so its seconds and peak RSS are its own.

Catalogs: `tuxpaint` and `fashion-mnist` as `make demo` builds them (python -m imagesearch.demo_catalog ...);
`photos`: real photos in category folders from two Debian packages fetched with `apt-get download` into
--downloads (GCompris's categorisation and exploration pictures: tools, renewable energy, fishes, monuments,
animals; Scratch 1.4's background photos: indoors, outdoors, nature), written as a catalog under data/catalogs/photos.
Embeddings are cached under data/bench-model/ (delete it to re-embed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from bench.quality import load
from imagesearch.augment import EVALUATION_DISTORTIONS, distort, training_distortions
from imagesearch.catalog import CatalogItem
from imagesearch.demo_catalog import EPOCH, made_up_on_sale, made_up_price, write_catalog
from imagesearch.projection import PcaWhitening
from imagesearch.settings import DATA_DIR, get_settings
from imagesearch.training.evaluation import Queries, Scores, compare, held_out

CACHE = DATA_DIR / "bench-model"
GCOMPRIS = "gcompris-qt-data"
SCRATCH = "scratch"
# (package, resource file or folder, folder inside it, category)
PHOTO_SOURCES = (
    (GCOMPRIS, "categorization.rcc", "tools", "tools"),
    (GCOMPRIS, "categorization.rcc", "renewable", "renewable energy"),
    (GCOMPRIS, "categorization.rcc", "fishes", "fishes"),
    (GCOMPRIS, "categorization.rcc", "monuments", "monuments"),
    (GCOMPRIS, "explore_monuments.rcc", "", "monuments"),
    (GCOMPRIS, "explore_world_animals.rcc", "animals", "animals"),
    (GCOMPRIS, "explore_farm_animals.rcc", "animals", "animals"),
    (GCOMPRIS, "erase.rcc", "resource", "animals"),
    (SCRATCH, "Indoors", "", "indoors"),
    (SCRATCH, "Outdoors", "", "outdoors"),
    (SCRATCH, "Nature", "", "nature"),
)


# --- The real-photo catalog ------------------------------------------------------------------------------------

def qt_resources(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of each file in a Qt resource bundle (.rcc: header, tree, names, zlib-compressed payloads)."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node = 14 if version == 1 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    pending = [(0, "")]
    while pending:
        index, parent = pending.pop()
        base = tree + index * node
        name_offset, flags = struct.unpack(">IH", data[base : base + 6])
        path = f"{parent}/{name(name_offset)}" if index else ""
        if flags & 2:  # a directory
            count, first = struct.unpack(">II", data[base + 6 : base + 14])
            pending.extend((child, path) for child in range(first, first + count))
            continue
        (offset,) = struct.unpack(">I", data[base + 10 : base + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 4:  # zstd: not used by the files read here
            continue
        yield path, zlib.decompress(blob[4:]) if flags & 1 else blob


def unpacked(package: str, downloads: Path) -> Path:
    target = downloads / package
    if not target.is_dir():
        downloads.mkdir(parents=True, exist_ok=True)
        if not list(downloads.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=downloads, check=True)
        deb = sorted(downloads.glob(f"{package}_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True)
    return target


def photo_files(downloads: Path) -> Iterator[tuple[str, str, bytes]]:
    """(item name, category, image bytes) of every real photo of PHOTO_SOURCES."""
    rcc = unpacked(GCOMPRIS, downloads) / "usr/share/gcompris-qt/rcc"
    media = unpacked(SCRATCH, downloads) / "usr/share/scratch/Media/Backgrounds"
    for package, source, folder, category in PHOTO_SOURCES:
        if package == SCRATCH:
            for path in sorted((media / source).glob("*.jpg")):
                yield f"scratch-{source}-{path.stem}", category, path.read_bytes()
            continue
        for path, data in sorted(qt_resources((rcc / source).read_bytes())):
            if path.endswith(".webp") and (not folder or path.split("/")[-2] == folder):
                yield f"gcompris-{source.removesuffix('.rcc')}-{Path(path).stem}", category, data


def build_photo_catalog(downloads: Path) -> Path:
    out = DATA_DIR / "catalogs" / "photos"
    catalog = out / "catalog.csv"
    if catalog.exists():
        return catalog
    (out / "images").mkdir(parents=True, exist_ok=True)
    items = []
    for name, category, data in photo_files(downloads):
        path = out / "images" / f"{name}.jpg"
        Image.open(io.BytesIO(data)).convert("RGB").save(path, "JPEG", quality=95)
        items.append(CatalogItem(item_id=name, image_uri=f"images/{path.name}", title=name, category=category,
                                 price=made_up_price(name), on_sale=made_up_on_sale(name), updated_at=EPOCH))
    write_catalog(items, catalog)
    return catalog


# --- Embedding a catalog and its copies (cached) -------------------------------------------------------------------

def embed_catalog(name: str, catalog: Path, limit: int, copies: int, fraction: float, seed: int) -> dict[str, np.ndarray]:
    from imagesearch.embedder import Embedder

    embedder = Embedder(threads=1)  # one thread: on a shared CPU a second only spins
    path = CACHE / f"{name}-{limit}-{copies}-{fraction:g}-{seed}-{embedder.model_id[:40]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as cached:
            return dict(cached)
    images = load(str(catalog), limit, seed)
    ids = [f"{i}" for i in range(len(images.originals))]
    held = held_out([f"{name}:{i}" for i in ids], fraction)
    rng = np.random.default_rng(seed)
    pictures = [Image.open(io.BytesIO(data)) for data in images.originals]
    batch = get_settings().pipeline.embed_batch_size

    def vectors_of(blobs: list[bytes]) -> np.ndarray:
        return embedder.embed_many([embedder.preprocess(blob) for blob in blobs], batch)

    started = time.monotonic()
    originals = vectors_of(images.originals)
    train_rows = np.repeat(np.flatnonzero(~held), copies)
    train_copies = vectors_of([distort(pictures[row], training_distortions(rng)) for row in train_rows])
    eval_rows = np.repeat(np.flatnonzero(held), len(EVALUATION_DISTORTIONS))
    eval_names = np.tile([d.name for d in EVALUATION_DISTORTIONS], int(held.sum()))
    eval_copies = vectors_of([distort(pictures[row], distortion)
                              for row, distortion in zip(eval_rows, EVALUATION_DISTORTIONS * int(held.sum()), strict=True)])
    print(f"[{name}] embedded {len(originals) + len(train_copies) + len(eval_copies)} images in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    labels, categories = np.unique(np.asarray(images.categories), return_inverse=True)
    result = {"vectors": originals, "categories": categories.astype(np.int32), "held_out": held,
              "train_copies": train_copies, "train_rows": train_rows, "eval_copies": eval_copies,
              "eval_rows": eval_rows, "eval_names": eval_names, "labels": labels}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **result)
    return result


# --- Training in a process of its own ------------------------------------------------------------------------------

def train_in_subprocess(vectors: np.ndarray, categories: np.ndarray | None, copies: np.ndarray,
                        copy_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """train_head run by `bench/model.py --train DIR` on arrays saved in DIR (vectors memory-mapped there)."""
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch:
        folder = Path(scratch)
        for array_name, array in (("vectors", vectors), ("copies", copies), ("copy_rows", copy_rows)):
            np.save(folder / f"{array_name}.npy", array)
        if categories is not None:
            np.save(folder / "categories.npy", categories)
        return run_training(folder)


def run_training(folder: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, __file__, "--train", str(folder)], check=True, env=env)
    with np.load(folder / "head.npz", allow_pickle=False) as head:
        return head["mean"], head["weight"], json.loads((folder / "report.json").read_text())


def train_from_folder(folder: Path) -> None:
    from imagesearch.training.head import train_head

    categories = np.load(folder / "categories.npy") if (folder / "categories.npy").exists() else None
    started = time.monotonic()
    head = train_head(np.load(folder / "vectors.npy", mmap_mode="r"), categories, np.load(folder / "copies.npy"),
                      np.load(folder / "copy_rows.npy"))
    report = {**head.report, "wall_seconds": round(time.monotonic() - started, 1)}
    np.savez(folder / "head.npz", mean=head.mean, weight=head.weight)
    (folder / "report.json").write_text(json.dumps(report))


# --- The tables -------------------------------------------------------------------------------------------------

def evaluate_catalog(name: str, data: dict[str, np.ndarray]) -> list[str]:
    held = data["held_out"]
    train = np.flatnonzero(~held)
    vectors, categories = data["vectors"], data["categories"]
    mean, weight, report = train_in_subprocess(vectors[train], categories[train], data["train_copies"],
                                               np.searchsorted(train, data["train_rows"]))
    from imagesearch.projection import LinearHead

    settings = get_settings().pipeline
    today = PcaWhitening.fit(vectors, settings.whitening_dims, settings.whitening_shrinkage)
    queries = Queries(data["eval_copies"], data["eval_rows"], data["eval_names"], np.flatnonzero(held))
    scores = compare(LinearHead(mean=mean, weight=weight), today, vectors, categories, queries)
    load_average = os.getloadavg()[0]
    print(f"[{name}] chose {report['chosen']}; validation: "
          + ", ".join(f"{k} {v['near_dup_top1']:.3f}/{v['category_p10'] or 0:.3f}" for k, v in report["validation"].items()),
          file=sys.stderr)
    title = (f"{name} ({len(vectors)} items, {len(data['labels'])} categories; {int(held.sum())} held out, "
             f"{len(data['eval_copies'])} near-dup queries)")
    rows = [row(title, "raw features", scores["raw"]), row(title, "today (PCA-whitening)", scores["current"]),
            row(title, f"trained head ({report['chosen']})", scores["candidate"],
                f"{report['wall_seconds']:.1f}", f"{report['peak_rss_bytes'] / 2**30:.2f}")]
    return [f"{line} {load_average:.1f} |" for line in rows]


def row(catalog: str, model: str, found: Scores, seconds: str = "", rss: str = "") -> str:
    precision = "—" if found.category_p10 is None else f"{found.category_p10:.3f}"
    return (f"| {catalog} | {model} | {found.near_dup_top1:.3f} | {found.near_dup_worst:.3f} ({found.worst_transform}) "
            f"| {precision} | {seconds} | {rss} |")


def million(items: int, dim: int, copies: int, seed: int) -> None:
    """train_head on a synthetic ``items`` x ``dim`` float16 matrix stored as build_index stores embeddings."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="bench-model-million-") as scratch:
        folder = Path(scratch)
        centres = rng.normal(size=(1_000, dim)).astype(np.float32)
        classes = rng.integers(0, 1_000, items).astype(np.int32)
        stored = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float16, shape=(items, dim))
        for start in range(0, items, 65_536):
            labels = classes[start : start + 65_536]
            block = centres[labels] + 2.0 * rng.normal(size=(len(labels), dim)).astype(np.float32)
            stored[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        stored.flush()
        copy_rows = np.sort(rng.choice(items, copies, replace=False)).astype(np.int64)
        moved = np.asarray(stored[copy_rows], np.float32) + 0.02 * rng.normal(size=(copies, dim)).astype(np.float32)
        np.save(folder / "copies.npy", (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float16))
        np.save(folder / "copy_rows.npy", copy_rows)
        np.save(folder / "categories.npy", classes)
        del stored
        _, _, report = run_training(folder)
    print(f"| {items:,} x {dim} float16, {copies:,} copies, 1,000 categories | {report['wall_seconds']:.0f} | "
          f"{report['seconds']['whitening']:.0f} | {report['peak_rss_bytes'] / 2**30:.2f} | {report['chosen']} | "
          f"{os.getloadavg()[0]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", nargs="+", default=["tuxpaint", "fashion-mnist", "photos"])
    parser.add_argument("--fashion-items", type=int, default=1_500)
    parser.add_argument("--copies", type=int, default=2, help="training copies per training item")
    parser.add_argument("--held-out", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--downloads", type=Path, default=DATA_DIR / "downloads")
    parser.add_argument("--million", action="store_true", help="time train_head on 1M x 1280 synthetic vectors")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)  # the training subprocess
    args = parser.parse_args()
    if args.train:
        train_from_folder(args.train)
        return
    if args.million:
        print("| vectors | train_head s | of which whitening s | peak RSS GiB | chosen export | load average |")
        print("|---|---:|---:|---:|---|---:|")
        million(args.items, 1_280, 20_000, args.seed)
        return
    catalogs = {"tuxpaint": (DATA_DIR / "catalogs/tuxpaint/catalog.csv", 10**9),
                "fashion-mnist": (DATA_DIR / "catalogs/fashion-mnist/catalog.csv", args.fashion_items),
                "photos": (None, 10**9)}
    lines = []
    for name in args.catalogs:
        catalog, limit = catalogs[name]
        catalog = catalog or build_photo_catalog(args.downloads)
        lines += evaluate_catalog(name, embed_catalog(name, catalog, limit, args.copies, args.held_out, args.seed))
    print("| catalog | model | near-dup top-1 (mean of 8 transforms) | worst transform | category P@10 | "
          "training s | training peak RSS GiB | load average |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
