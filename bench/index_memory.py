"""What a loaded version holds in memory at N items, for each re-ranking dtype, against the server's old way.

    PYTHONPATH=. .venv/bin/python bench/index_memory.py --items 1000000 --dtypes float32 int8

Fabricates, untimed, one version of N items: ``items.parquet`` with catalog-like strings (every id, title, URI,
hash and stamp distinct), raw 1280-d float16 vectors around 2,000 random centres, a 512-d PCA-whitening learned on
a 100,000-row sample and ``search_space.npy``; then one ScaNN tree + AH index per dtype (hard links share the
other files), each sealed and committed. Each case runs in a fresh process: RSS after the imports (torch among
them, as in the server), after ``load_index`` (verified, as the server loads a version), after 300 searches
(100 unfiltered, 100 through a price filter matching ~4,000 items: an exact pass over their rows, 100 from a
stored row as /similar does), and the peak. "before" is the server's old holding of the float32 version, in the
same run: items as Python lists, an id -> row dict, and the search-space rows mapped from ScaNN's
``dataset.npy``. Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from imagesearch.artifacts import commit_local, seal
from imagesearch.index import REORDER_DTYPES, IndexParams, VectorIndex, choose_params
from imagesearch.index_store import (
    EMBEDDINGS,
    ITEMS,
    SEARCH_SPACE,
    StoredVectors,
    write_items,
    write_search_space,
    write_vectors,
)
from imagesearch.manifest import Manifest, ModelInfo
from imagesearch.projection import PROJECTION, PcaWhitening
from imagesearch.vectors import l2_normalize

RAW_DIM, CENTRES, CHUNK = 1280, 2000, 100_000
CATEGORIES = ("art", "kitchen", "people", "pets", "science", "space", "sport", "garden", "toys", "books")


def fabricate(directory: Path, count: int, rng: np.random.Generator) -> np.ndarray:
    """The version's shared files; returns the float32 search-space rows the indexes are built on."""
    write_items(directory / ITEMS, [
        {"item_id": f"item-{row:08d}", "title": f"Product {row} in {CATEGORIES[row % 10]}, size {row % 7}",
         "category": CATEGORIES[(row * 7919) % 10], "price": 1.0 + (row % 10_000) / 100, "on_sale": row % 3 == 0,
         "image_uri": f"gs://catalog-bucket/images/{row % 1000:03d}/{row:08d}.jpg",
         "image_sha256": f"{row * 2654435761 % 2**64:016x}" * 4, "updated_at": f"2026-01-01T{row % 24:02d}:00:00Z",
         "image_stamp": f"gs:{row * 40503 % 2**32:d}:{row}"} for row in range(count)])
    centres = l2_normalize(rng.normal(size=(CENTRES, RAW_DIM)).astype(np.float32))

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, count, CHUNK):
            source = centres[rng.integers(0, CENTRES, min(CHUNK, count - start))]
            yield l2_normalize(source + rng.normal(0, 0.75 / np.sqrt(RAW_DIM), source.shape).astype(np.float32))

    write_vectors(directory / EMBEDDINGS, chunks(), (count, RAW_DIM))
    stored = StoredVectors(directory / EMBEDDINGS)
    sample = np.sort(rng.choice(count, min(count, 100_000), replace=False))
    whitening = PcaWhitening.fit(stored.take(sample), 512)
    (directory / PROJECTION).write_bytes(whitening.to_bytes())
    space = stored.search_space(whitening)
    write_search_space(directory / SEARCH_SPACE, space)
    return space


def version(directory: Path, shared: Path, space: np.ndarray, params: IndexParams) -> float:
    """A sealed, committed version of the shared files and its own index; the build's seconds."""
    from imagesearch.index_store import projection_record
    from imagesearch.projection import load_projection

    directory.mkdir()
    for name in (ITEMS, EMBEDDINGS, PROJECTION, SEARCH_SPACE):
        os.link(shared / name, directory / name)
    began = time.perf_counter()
    VectorIndex.build(space, params).save(directory)
    built = time.perf_counter() - began
    projection = projection_record(directory, load_projection(directory / PROJECTION))
    model = ModelInfo(name="bench", weights_sha256="0" * 64, model_id="bench-model", dim=RAW_DIM)
    seal(directory, Manifest(version="20260101T000000Z", created_at="2026-01-01T00:00:00+00:00", item_count=len(space),
                             model=model, index={"params": params.to_dict(), "projection": projection}))
    commit_local(directory)
    return built


def rss_mb() -> tuple[float, float]:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(directory: Path, case: str) -> None:
    """In this fresh process: load ``directory`` as the server does (or did, ``before``), search, report RSS."""
    from dataclasses import replace

    import torch  # noqa: F401  (the server holds it for its embedder; exact search's top-k uses it)

    from imagesearch.index_store import load_index, read_items
    from serving.search import Filters, nearest

    imported = rss_mb()[0]
    began = time.perf_counter()
    index = load_index(directory)
    if case == "before":
        items = read_items(directory / ITEMS)
        saved = VectorIndex.saved_vectors(directory, index.size, index.embeddings.shape[1])
        index = replace(index, items=items, row_of={item_id: row for row, item_id in enumerate(items["item_id"])},
                        categories=np.asarray(items["category"], dtype=object), embeddings=saved)
    loaded_s, loaded = time.perf_counter() - began, rss_mb()[0]
    rng = np.random.default_rng(1)
    rows = rng.choice(index.size, 100, replace=False)
    queries = np.asarray(index.embeddings[rows], dtype=np.float32)
    priced = Filters(min_price=50.0, max_price=50.4)  # ~4,000 of 1M rows: exact among them
    began = time.perf_counter()
    for row, query in zip(rows.tolist(), queries, strict=True):
        nearest(index, query, 10)
        nearest(index, query, 10, priced)
        nearest(index, index.embeddings[index.row_of[f"item-{row:08d}"]], 10, exclude=row)
    searched_s = time.perf_counter() - began
    after, peak = rss_mb()
    print(json.dumps({"imports": imported, "loaded": loaded, "load_s": loaded_s, "searched": after, "peak": peak,
                      "search_ms": searched_s / 300 * 1000}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dtypes", nargs="+", choices=REORDER_DTYPES, default=["float32", "int8"])
    parser.add_argument("--measure", nargs=2, metavar=("DIRECTORY", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(Path(args.measure[0]), args.measure[1])
        return
    dtypes = sorted(set(args.dtypes) | {"float32"}, key=REORDER_DTYPES.index)  # float32: the "before" case's index
    with tempfile.TemporaryDirectory(prefix="bench-index-memory-") as scratch:
        root = Path(scratch)
        (root / "shared").mkdir()
        space = fabricate(root / "shared", args.items, np.random.default_rng(0))
        built = {dtype: version(root / dtype, root / "shared", space, choose_params(args.items, reorder_dtype=dtype))
                 for dtype in dtypes}
        del space
        cases = [("before", "float32"), *((f"now, {dtype}", dtype) for dtype in dtypes)]
        print(f"\n{args.items:,} items, 512-d search space; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
        print("| case | re-ranking | build s | load s | RSS after imports MB | after load MB | after 300 searches MB "
              "| peak MB | ms a search |")
        print("|---|---|---|---|---|---|---|---|---|")
        for case, dtype in cases:
            result = subprocess.run([sys.executable, __file__, "--measure", str(root / dtype), case], check=True,
                                    stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "."})
            r = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"| {case} | {dtype} | {built[dtype]:.1f} | {r['load_s']:.1f} | {r['imports']:.0f} | {r['loaded']:.0f} "
                  f"| {r['searched']:.0f} | {r['peak']:.0f} | {r['search_ms']:.2f} |", flush=True)
        print(f"\nload average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
