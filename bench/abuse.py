"""The search service under abusive queries: peak memory during a burst of worst-case decodes, and the
work a filtered search does when its category is far from the query.

    PYTHONPATH=. .venv/bin/python bench/abuse.py [--items 40000] [--burst 16]

Builds a synthetic 40,000-item index (clustered 512-d vectors, one category holding half the items;
needs no ``make demo``), starts ``python -m serving.app`` on it with the default limits, and fires
``--burst`` concurrent raw-body searches of each worst case at it: the costliest image a query may be
(16-bit greyscale just under IMAGESEARCH_QUERY_MAX_IMAGE_PIXELS), a 6300x6300 PNG of ~170 KB, an ICO
holding a 6000x6000 PNG and a corrupt 16-Mpx PNG. It
samples the server's RSS every 5 ms; the baseline is the same server idle, measured in the same run.
Then, in this process, it times a filtered query whose category is far from the query vector: the
exact pass over the whole matching subset (the previous behaviour) against serving.search.nearest.
Prints Markdown tables. Never run as a test.

    ulimit -n 20000; PYTHONPATH=. .venv/bin/python bench/abuse.py --connections [--hold-s 60]

runs the connection attacks instead (bench/abuse_connections.py): ``--idle`` connections that send nothing and
``--slow-header`` ones that trickle their headers, from one peer address and from one address each, then
``--slow-body`` uploads that trickle their body, against uvicorn's options as on main and against the guarded
server, while a legitimate client searches and probes. One Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil

from bench.abuse_connections import connection_table
from bench.serve import start_server
from imagesearch.artifacts import Manifest, commit_local, seal
from imagesearch.embedder import Embedder
from imagesearch.index import VectorIndex, choose_params, exact_search
from imagesearch.index_store import EMBEDDINGS, ITEMS, WHITENING, load_index, search_space, write_items
from imagesearch.model import FEATURE_DIM
from imagesearch.settings import Settings
from imagesearch.vectors import l2_normalize
from imagesearch.whitening import Whitening
from serving.decode_budget import decode_permits, worst_case_decode_bytes
from serving.search import Filters, build_category_indexes, nearest
from tests.conftest import jpeg_bytes, photo
from tests.serving.hostile_inputs import HttpRequest, corrupt_png, huge_small_png, ico_with_png, send, worst_case_png

VERSION = "20260201T000000Z"
DIMS = 512
CATEGORIES = 9
MIB = 1024 * 1024


def build_index(folder: Path, items: int, seed: int = 7) -> Path:
    """Category ``c0`` holds half the items; eight small categories share the rest. Each category is a cluster."""
    rng = np.random.default_rng(seed)
    categories = np.where(np.arange(items) < items // 2, 0, 1 + np.arange(items) % (CATEGORIES - 1))
    centres = l2_normalize(rng.standard_normal((CATEGORIES, DIMS)).astype(np.float32))
    vectors = l2_normalize(centres[categories] + 0.1 * rng.standard_normal((items, DIMS)).astype(np.float32))
    projection, _ = np.linalg.qr(rng.standard_normal((FEATURE_DIM, DIMS)))
    whitening = Whitening(np.zeros(FEATURE_DIM, np.float32), projection.astype(np.float32))
    raw = l2_normalize(vectors @ projection.T.astype(np.float32))  # raw embeddings that whiten back to ``vectors``
    folder.mkdir(parents=True)
    write_items(folder / ITEMS, [
        {"item_id": f"item-{row}", "title": f"item {row}", "category": f"c{categories[row]}", "price": float(row % 100),
         "on_sale": bool(row % 2), "image_uri": f"https://images.example.com/{row}.jpg", "image_sha256": "0" * 64}
        for row in range(items)
    ])
    np.save(folder / EMBEDDINGS, raw.astype(np.float32), allow_pickle=False)
    (folder / WHITENING).write_bytes(whitening.to_bytes())
    params = choose_params(items)
    VectorIndex.build(search_space(raw.astype(np.float32), whitening), params).save(folder)
    model = Embedder().info
    seal(folder, Manifest(version=VERSION, created_at="2026-02-01T00:00:00+00:00", item_count=items, model=model,
                          index={"params": params.to_dict()}))
    commit_local(folder)
    return folder


@dataclass
class Burst:
    name: str
    image_kb: float
    peak_rss_mib: float
    statuses: str
    seconds: float


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / MIB


def burst(url: str, process: psutil.Process, name: str, image: bytes, count: int) -> Burst:
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 0
    request = HttpRequest(path="/v1/search?k=5", headers={"Content-Type": "image/png"}, body=image)
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(send(host, port, request, 300).status)) for _ in range(count)]
    peak = rss_mib(process)
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_mib(process))
        time.sleep(0.005)
    seconds = time.perf_counter() - began
    counted = ", ".join(f"{count} x {status}" for status, count in sorted(Counter(statuses).items()))
    return Burst(name, len(image) / 1024, peak, counted, seconds)


def memory_table(url: str, process: psutil.Process, settings: Settings, count: int) -> str:
    idle = rss_mib(process)
    # The refused burst first: memory a burst takes stays in the allocator afterwards.
    rows = [
        burst(url, process, "6300x6300 PNG (refused from its header)", huge_small_png(), count),
        burst(url, process, "ICO holding a 6000x6000 RGBA PNG (refused: not an accepted format)", ico_with_png(6000), count),
        burst(url, process, "corrupt 4000x4000 PNG (fills its image, then fails)", corrupt_png(4000, 4000), count),
        burst(url, process, f"16-bit grey PNG just under the {settings.serving.query_max_image_pixels / 1e6:g} Mpx query cap",
              worst_case_png(settings.serving.query_max_image_pixels - 1), count),
    ]
    permits = decode_permits(settings.serving.decode_memory_budget_mb, settings.serving.query_max_image_pixels)
    lines = [
        f"server idle (baseline): **{idle:.0f} MiB** RSS; decode permits: {permits} "
        f"(budget {settings.serving.decode_memory_budget_mb} MiB ÷ worst case "
        f"{worst_case_decode_bytes(settings.serving.query_max_image_pixels) / MIB:.0f} MiB per image)",
        "",
        f"| burst of {count} concurrent searches | body KB | peak RSS MiB | over idle MiB | statuses | seconds |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {row.name} | {row.image_kb:.0f} | {row.peak_rss_mib:.0f} | {row.peak_rss_mib - idle:.0f} | "
              f"{row.statuses} | {row.seconds:.1f} |" for row in rows]
    return "\n".join(lines)


def filtered_table(index_dir: Path, settings: Settings, repeats: int = 20) -> str:
    index = load_index(index_dir)
    small = np.flatnonzero(index.categories == "c1")
    far = Filters(category="c0")  # half the items, all far from a c1 query
    subset = np.flatnonzero(far.mask(index))
    queries = index.embeddings[small[:repeats]]

    def timed(search: object) -> tuple[float, object]:
        began = time.perf_counter()
        results = [search(query) for query in queries]  # type: ignore[operator]
        return (time.perf_counter() - began) / len(queries) * 1000, results

    old_ms, old = timed(lambda q: exact_search(index.embeddings[subset], q[None], 10))
    max_rows = settings.serving.filtered_search_max_rows
    lines = [
        f"{index.size:,} items, filter `category=c0` ({len(subset):,} items) for queries from category c1, k=10, "
        f"{len(queries)} queries",
        "",
        "| filtered search | ms per query | vectors copied per query | top-10 overlap with exact | capped answers |",
        "|---|---|---|---|---|",
        f"| exact pass over the matching subset (before) | {old_ms:.1f} | {len(subset):,} | 100 % | - |",
    ]
    for name in ("whole index only, deeper search capped", "per-category index (what the server builds)"):
        if "per-category" in name:
            build_category_indexes(index, max_rows)
        new_ms, new = timed(lambda q: nearest(index, q, 10, far, max_rows=max_rows))
        capped = sum(found.capped for found in new)  # type: ignore[attr-defined]
        overlap = statistics.mean(
            len(set(found.rows.tolist()) & set(subset[rows[0]].tolist())) / 10
            for found, (rows, _) in zip(new, old, strict=True)  # type: ignore[arg-type]
        )
        copied = len(subset) if len(subset) <= max_rows else 0  # a small subset is searched exactly, in chunks
        lines.append(f"| {name}, max rows {max_rows:,} | {new_ms:.1f} | {copied:,} | {overlap:.0%} | "
                     f"{capped} of {len(queries)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--connections", action="store_true", help="run the connection attacks instead")
    parser.add_argument("--hold-s", type=float, default=60.0)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow-header", type=int, default=256)
    parser.add_argument("--slow-body", type=int, default=64)
    args = parser.parse_args()
    settings = Settings.from_env({})
    folder = Path(tempfile.mkdtemp(prefix="abuse-bench-"))
    try:
        index_dir = build_index(folder / VERSION, args.items)
        if args.connections:
            print(connection_table(index_dir, folder, jpeg_bytes(photo("rocket")), args.hold_s, args.idle,
                                   args.slow_header, args.slow_body))
            return
        server, url = start_server(index_dir, settings.serving.batch_max_size, folder / "server.log")
        try:
            print(memory_table(url, psutil.Process(server.pid), settings, args.burst))
        finally:
            server.terminate()
            server.wait(timeout=60)
        print()
        print(filtered_table(index_dir, settings))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
