"""The search service under abusive clients: each attack of issue 22 against one server, with the server's peak
memory and what a legitimate client sees meanwhile, and the work a filtered search does when its category is far
from the query.

    PYTHONPATH=. .venv/bin/python bench/abuse.py [--items 40000] [--burst 16] [--uploads 64]

Builds a synthetic 40,000-item index (clustered 512-d vectors, one category holding half the items; needs no
``make demo``), starts one ``python -m serving.app`` on it with the default limits and, one attack after another,
sends from 127.0.0.2-5 in turn (so a burst larger than one client's slot share is still admitted): ``--burst``
ICO files holding a 6000x6000 PNG, corrupt 16-Mpx PNGs (and three times as many), 6300x6300 PNGs, JPEG 2000
files, the RGBA WebP at the in-cap maximum, 16-bit grey PNGs just under the pixel cap, then the whole hostile
corpus (tests/serving/hostile_corpus.py at in-cap maximum sizes, one sample per way the decoder opens them: every
format Pillow opens, containers, bombs, truncated and corrupted variants) ``--burst`` at a time, and last
``--uploads`` maximum-size multipart uploads that decode, all at once. Meanwhile a legitimate client on 127.0.0.1
searches in a loop and polls /healthz and /readyz (1 s timeout). The server's RSS is sampled every 5 ms; the
baseline is the same server idle, measured in the same run. Then, in this process, it times a filtered query
whose category is far from the query vector: the exact pass over the whole matching subset (the previous
behaviour) against serving.search.nearest. Prints Markdown tables. Never run as a test.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import psutil

from bench.abuse_connections import connection_table, counted, rate
from bench.serve import start_server
from imagesearch.artifacts import Manifest, commit_local, seal
from imagesearch.embedder import Embedder
from imagesearch.index import VectorIndex, choose_params, exact_search
from imagesearch.index_store import EMBEDDINGS, ITEMS, load_index, projection_record, search_space, write_items
from imagesearch.projection import PROJECTION, LinearHead
from imagesearch.settings import Settings
from imagesearch.vectors import l2_normalize
from serving.memory_budget import MIB
from serving.search import Filters, build_category_indexes, nearest
from tests.conftest import jpeg_bytes, photo
from tests.serving.hostile_corpus import corpus, gradient, opened_as
from tests.serving.hostile_inputs import (
    MULTIPART_TYPE,
    HttpRequest,
    corrupt_png,
    encoded,
    huge_small_png,
    ico_with_png,
    image_form,
    noise_png,
    send,
    worst_case_png,
)

VERSION = "20260201T000000Z"
DIMS = 512
CATEGORIES = 9


def build_index(folder: Path, items: int, seed: int = 7) -> Path:
    """Category ``c0`` holds half the items; eight small categories share the rest. Each category is a cluster."""
    rng = np.random.default_rng(seed)
    categories = np.where(np.arange(items) < items // 2, 0, 1 + np.arange(items) % (CATEGORIES - 1))
    centres = l2_normalize(rng.standard_normal((CATEGORIES, DIMS)).astype(np.float32))
    vectors = l2_normalize(centres[categories] + 0.1 * rng.standard_normal((items, DIMS)).astype(np.float32))
    model = Embedder().info
    projection, _ = np.linalg.qr(rng.standard_normal((model.dim, DIMS)))
    head = LinearHead(mean=np.zeros(model.dim, np.float32), weight=projection.astype(np.float32))
    raw = l2_normalize(vectors @ projection.T.astype(np.float32))  # raw embeddings that project back to ``vectors``
    folder.mkdir(parents=True)
    write_items(folder / ITEMS, [
        {"item_id": f"item-{row}", "title": f"item {row}", "category": f"c{categories[row]}", "price": float(row % 100),
         "on_sale": bool(row % 2), "image_uri": f"https://images.example.com/{row}.jpg", "image_sha256": "0" * 64}
        for row in range(items)
    ])
    np.save(folder / EMBEDDINGS, raw.astype(np.float32), allow_pickle=False)
    (folder / PROJECTION).write_bytes(head.to_bytes())
    params = choose_params(items)
    VectorIndex.build(search_space(raw, head), params).save(folder)
    seal(folder, Manifest(version=VERSION, created_at="2026-02-01T00:00:00+00:00", item_count=items, model=model,
                          index={"params": params.to_dict(), "projection": projection_record(folder, head)}))
    commit_local(folder)
    return folder


MEMORY_ATTACKERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")  # so bursts past one client's slot share are admitted


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / MIB


@dataclass
class MemoryAttack:
    name: str
    requests: list[HttpRequest]
    concurrency: int


@dataclass
class MemoryRow:
    attack: MemoryAttack
    statuses: Counter[str]
    rss_before: float
    peak: float
    legitimate: Legitimate
    seconds: float
    refusals: Counter[str]


def raw_search(image: bytes, content_type: str = "image/png") -> HttpRequest:
    return HttpRequest(path="/v1/search?k=5", headers={"Content-Type": content_type}, body=image)


def fire(url: str, process: psutil.Process, attack: MemoryAttack, legit_image: bytes) -> MemoryRow:
    """``attack.requests`` from MEMORY_ATTACKERS in turn, ``attack.concurrency`` at a time, while a legitimate client
    on 127.0.0.1 searches and probes; the server's RSS sampled every 5 ms."""
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 0
    pending = list(enumerate(attack.requests))
    statuses: Counter[str] = Counter()
    refusals: Counter[str] = Counter()  # the bodies of 5xx answers
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                number, request = pending.pop(0)
            try:
                answer = send(host, port, request, 120, MEMORY_ATTACKERS[number % len(MEMORY_ATTACKERS)])
                status = str(answer.status)
                if answer.status >= 500:
                    with lock:
                        refusals[answer.body.decode(errors="replace")[:300]] += 1
            except TimeoutError:
                status = "hang (no answer in 120 s)"
            except OSError as exc:
                status = type(exc).__name__
            with lock:
                statuses[status] += 1

    attacking = True
    seen: list[Legitimate] = []
    legit = threading.Thread(target=lambda: seen.append(legitimate_traffic(url, lambda: attacking, legit_image)))
    workers = [threading.Thread(target=worker) for _ in range(attack.concurrency)]
    before = peak = rss_mib(process)
    began = time.perf_counter()
    legit.start()
    for thread in workers:
        thread.start()
    while any(thread.is_alive() for thread in workers):
        peak = max(peak, rss_mib(process))
        time.sleep(0.005)
    seconds = time.perf_counter() - began
    attacking = False
    legit.join()
    return MemoryRow(attack, statuses, before, peak, seen[0], seconds, refusals)


def memory_attacks(settings: Settings, burst: int, uploads: int) -> list[MemoryAttack]:
    serving = settings.serving
    began = time.perf_counter()
    samples = corpus(serving.query_max_image_pixels, serving.max_upload_bytes, distinct=True)
    print(f"hostile corpus: {len(samples)} samples ({sum(s.decodes for s in samples)} that decode) built in "
          f"{time.perf_counter() - began:.0f} s", flush=True)
    webp = next(s for s in samples if s.decodes and s.pillow_format == "WEBP" and opened_as(s.data)[1] == "RGBA")
    max_upload = image_form(noise_png(serving.max_upload_bytes - 80_000))
    corrupt = corrupt_png(4000, 4000)
    return [
        MemoryAttack(f"{burst} ICO files holding a 6000x6000 PNG (6 KB each)", [raw_search(ico_with_png(6000))] * burst,
                     burst),
        MemoryAttack(f"{burst} corrupt 16-Mpx PNGs (69 KB each)", [raw_search(corrupt)] * burst, burst),
        MemoryAttack(f"{3 * burst} corrupt 16-Mpx PNGs", [raw_search(corrupt)] * (3 * burst), 3 * burst),
        MemoryAttack(f"{burst} 6300x6300 PNGs (170 KB)", [raw_search(huge_small_png())] * burst, burst),
        MemoryAttack(f"{burst} JPEG 2000, 2000x2000", [raw_search(encoded(gradient("RGB", 2000), "JPEG2000"))] * burst,
                     burst),
        MemoryAttack(f"{burst} {webp.name} at the in-cap maximum (RGBA WebP, {len(webp.data) / 1024:.0f} KB)",
                     [raw_search(webp.data)] * burst, burst),
        MemoryAttack(f"{burst} 16-bit grey PNGs just under the {serving.query_max_image_pixels / 1e6:g} Mpx cap",
                     [raw_search(worst_case_png(serving.query_max_image_pixels - 1))] * burst, burst),
        MemoryAttack(f"hostile corpus: each of {len(samples)} samples once, {burst} at a time",
                     [raw_search(sample.data) for sample in samples], burst),
        MemoryAttack(f"{uploads} maximum-size uploads (multipart {len(max_upload) / MIB:.1f} MiB noise PNG that decodes)",
                     [HttpRequest(path="/v1/search?k=5", headers={"Content-Type": MULTIPART_TYPE}, body=max_upload)]
                     * uploads, uploads),
    ]


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def memory_table(url: str, process: psutil.Process, settings: Settings, burst: int, uploads: int) -> str:
    attacks = memory_attacks(settings, burst, uploads)
    legit_image = jpeg_bytes(photo("rocket"))
    idle = rss_mib(process)
    rows = []
    for attack in attacks:
        rows.append(fire(url, process, attack, legit_image))
        print(f"  {attack.name}: {counted(rows[-1].statuses)}", flush=True)
    with httpx.Client(base_url=url, timeout=5) as http:
        ready = http.get("/readyz").status_code
    five_xx = sum(count for row in rows for status, count in row.statuses.items() if status.startswith("5"))
    hangs = sum(count for row in rows for status, count in row.statuses.items() if status.startswith("hang"))
    legit_5xx = sum(count for row in rows for status, count in row.legitimate.searches.items() if status.startswith("5"))
    serving = settings.serving
    lines = [
        f"server idle (baseline): **{idle:.0f} MiB** RSS; query memory budget {serving.query_memory_budget_mb} MiB "
        f"(most reserved at once: {metric(url, 'imagesearch_query_memory_reserved_peak_bytes') / MIB:.0f} MiB); "
        f"attackers {', '.join(MEMORY_ATTACKERS)} in turn, the legitimate client on 127.0.0.1 (searches: 10 s "
        f"timeout; probes: 1 s)",
        "",
        "| attack | requests (at once) | statuses | RSS before MiB | peak RSS MiB | peak over idle MiB | legitimate "
        "searches 200 | probes 200 | slowest probe s | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {row.attack.name} | {len(row.attack.requests)} ({row.attack.concurrency}) | {counted(row.statuses)} | "
              f"{row.rss_before:.0f} | {row.peak:.0f} | **{row.peak - idle:.0f}** | {rate(row.legitimate.searches)} | "
              f"{rate(row.legitimate.probes)} | {row.legitimate.slowest_probe_s:.2f} | {row.seconds:.1f} |" for row in rows]
    lines += ["", f"attack responses with a 5xx status: {five_xx}; legitimate searches with a 5xx status: {legit_5xx}; "
                  f"hangs: {hangs}; /readyz afterwards: {ready}; worst peak over idle: "
                  f"**{max(row.peak for row in rows) - idle:.0f} MiB**"]
    lines += [f"- {row.attack.name}: {count} x {body}" for row in rows for body, count in row.refusals.items()]
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


@dataclass
class Legitimate:
    searches: Counter[str]
    probes: Counter[str]
    slowest_probe_s: float = 0.0


def legitimate_traffic(url: str, running: Callable[[], bool], image: bytes) -> Legitimate:
    seen = Legitimate(Counter(), Counter())
    with httpx.Client(base_url=url, timeout=10) as searches, httpx.Client(base_url=url, timeout=1) as probes:
        while running():
            try:
                found = searches.post("/v1/search?k=5", content=image, headers={"Content-Type": "image/jpeg"})
                seen.searches[str(found.status_code)] += 1
            except httpx.HTTPError as exc:
                seen.searches[type(exc).__name__] += 1
            for path in ("/healthz", "/readyz"):
                began = time.monotonic()
                try:
                    seen.probes[str(probes.get(path).status_code)] += 1
                except httpx.HTTPError as exc:
                    seen.probes[type(exc).__name__] += 1
                seen.slowest_probe_s = max(seen.slowest_probe_s, time.monotonic() - began)
            time.sleep(0.1)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--burst", type=int, default=16, help="concurrent hostile uploads per memory attack")
    parser.add_argument("--uploads", type=int, default=64, help="concurrent maximum-size uploads")
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
            print(memory_table(url, psutil.Process(server.pid), settings, args.burst, args.uploads))
        finally:
            server.terminate()
            server.wait(timeout=60)
        print()
        print(filtered_table(index_dir, settings))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

if __name__ == "__main__":
    main()
