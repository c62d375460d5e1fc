"""Search service under load over real HTTP: latency percentiles and throughput, micro-batching on vs off.

    PYTHONPATH=. .venv/bin/python bench/serve.py [--seconds 10] [--concurrency 1,8,16] [--repository PATH]

Fetches the latest committed index from the model repository (as the initContainer does; run
``make demo`` first), starts one ``python -m serving.app`` with micro-batching on (batch_max_size 16)
and one with it off (1), and drives ``GET /v1/items/{id}/similar`` and ``POST /v1/search`` (real JPEG
photos, raw image/jpeg bodies) at each concurrency from a separate load-generator process
(bench/loadgen.py), alternating between the two servers. Prints a Markdown table. Concurrency stays at most
16: one client (the load generator's one address) holds at most a quarter of IMAGESEARCH_MAX_QUEUE's 64 slots.

Where image search's time goes: "network busy" is the share of the cell's wall time the server's inference
thread spent in the network (``imagesearch_inference_seconds``), and the summary compares image search's rate
with the embedder's own (the same runtime, in this process, batch 8, measured before and after the cells).
Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.embed import best_of, jpegs
from imagesearch.artifacts import fetch, latest_version
from imagesearch.embedder import Embedder
from imagesearch.index_store import ITEMS, read_items
from imagesearch.preprocess import preprocess_bytes
from imagesearch.repository import open_repository
from imagesearch.settings import PROJECT_ROOT, get_settings

MODES = {"on": 16, "off": 1}  # batch_max_size per micro-batching mode
BATCH_METRIC = re.compile(r"^imagesearch_inference_(batch_size_sum|batch_size_count|seconds_sum) (\S+)$", re.MULTILINE)
EMBED_BATCH = 8


@dataclass
class Row:
    endpoint: str
    batching: str
    concurrency: int
    requests: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    failed: int
    mean_batch: float | None
    network_busy: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(index_dir: Path, batch_max_size: int, log: Path, argv: Sequence[str] = ("-m", "serving.app"),
                 env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``python ARGV`` (the server) on a free loopback port, with ``env`` over the benchmark's settings, once ready."""
    port = free_port()
    environ = {
        **os.environ, "PYTHONPATH": str(PROJECT_ROOT), "IMAGESEARCH_INDEX_DIR": str(index_dir),
        "IMAGESEARCH_HOST": "127.0.0.1", "IMAGESEARCH_PORT": str(port), "IMAGESEARCH_BATCH_MAX_SIZE": str(batch_max_size),
        **(env or {}),
    }
    with log.open("wb") as sink:
        command = [sys.executable, *argv]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environ, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit(f"the server did not become ready:\n{log.read_text()[-3000:]}")


def batch_totals(url: str) -> tuple[float, float, float]:
    """Images embedded, micro-batches run and seconds the inference thread spent in the network, so far."""
    found = dict((name, float(value)) for name, value in BATCH_METRIC.findall(httpx.get(f"{url}/metrics").text))
    return found.get("batch_size_sum", 0.0), found.get("batch_size_count", 0.0), found.get("seconds_sum", 0.0)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def measure(url: str, workload: Path, endpoint: str, batching: str, concurrency: int, args: argparse.Namespace) -> Row:
    before = batch_totals(url)
    began = time.monotonic()
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--workload", str(workload), "--endpoint", endpoint,
        "--concurrency", str(concurrency), "--warmup", str(args.warmup), "--seconds", str(args.seconds),
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                            capture_output=True, text=True, check=True)
    after = batch_totals(url)
    wall = time.monotonic() - began  # the load generator's warm-up included, as in the counters
    data = json.loads(result.stdout)
    latencies = data["latencies_s"]
    batches = after[1] - before[1]
    return Row(
        endpoint=endpoint, batching=batching, concurrency=concurrency, requests=len(latencies),
        throughput=len(latencies) / data["seconds"], p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99), failed=sum(count for status, count in data["statuses"].items() if status != "200"),
        mean_batch=(after[0] - before[0]) / batches if batches else None,
        network_busy=(after[2] - before[2]) / wall if batches else None,
    )


def prepare(folder: Path, repository: str) -> tuple[Path, Path]:
    """The latest committed index fetched into ``folder``, and the load generator's workload file."""
    repo = open_repository(repository)
    version = latest_version(repo)
    if version is None:
        raise SystemExit(f"no committed index in {repository}: run `make demo` first")
    index_dir = folder / version
    fetch(repo, version, index_dir)
    images = []
    for number, jpeg in enumerate(jpegs()):
        path = folder / f"query-{number}.jpg"
        path.write_bytes(jpeg)
        images.append(str(path))
    workload = folder / "workload.json"
    workload.write_text(json.dumps({"item_ids": read_items(index_dir / ITEMS)["item_id"], "images": images}))
    return index_dir, workload


def table(rows: list[Row]) -> str:
    lines = [
        "| endpoint | micro-batching | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | failed | mean batch "
        "| network busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        batch = f"{row.mean_batch:.1f}" if row.mean_batch is not None else "-"
        busy = f"{row.network_busy:.0%}" if row.network_busy is not None else "-"
        lines.append(
            f"| {row.endpoint} | {row.batching} | {row.concurrency} | {row.requests} | {row.throughput:.1f} | {row.p50_ms:.1f} | "
            f"{row.p95_ms:.1f} | {row.p99_ms:.1f} | {row.failed} | {batch} | {busy} |"
        )
    return "\n".join(lines)


def embedder_rate(embedder: Embedder, repeats: int = 5) -> float:
    """The embedder's images/s at batch EMBED_BATCH on the benchmark's photos, in this process (best of repeats)."""
    photos = jpegs()
    batch = np.stack([preprocess_bytes(photos[i % len(photos)], embedder.config.preprocess) for i in range(EMBED_BATCH)])
    embedder.embed_arrays(batch)
    return EMBED_BATCH / best_of(repeats, lambda: embedder.embed_arrays(batch))


def summary(rows: list[Row], embedded_per_s: float, runtime: str) -> str:
    def find(endpoint: str, batching: str, concurrency: int) -> Row | None:
        return next((r for r in rows if (r.endpoint, r.batching, r.concurrency) == (endpoint, batching, concurrency)), None)

    lines = []
    if similar := find("similar", "on", 8):
        lines.append(f"- /similar p99 at concurrency 8: {similar.p99_ms:.1f} ms (target < 10 ms)")
    top = max((r.concurrency for r in rows if r.endpoint == "search"), default=None)
    on, off = (find("search", "on", top), find("search", "off", top)) if top else (None, None)
    if on and off and off.throughput:
        lines.append(f"- image search throughput at concurrency {top}, batching on / off: "
                     f"{on.throughput / off.throughput:.2f}x (target >= 1.5x)")
    best = max((r for r in rows if r.endpoint == "search"), key=lambda r: r.throughput, default=None)
    if best:
        lines.append(f"- the embedder alone ({runtime}, batch {EMBED_BATCH}, this process, mean of before and after): "
                     f"{embedded_per_s:.1f} img/s; image search at best ({best.batching}, concurrency {best.concurrency}): "
                     f"{best.throughput:.1f} req/s = {best.throughput / embedded_per_s:.0%} of it (target >= 80 %)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repository", default=get_settings().storage.model_repository)
    parser.add_argument("--concurrency", default="1,8,16", help="comma-separated, at most 16 (a client's share)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each cell")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    embedder = Embedder(device="cpu")  # the runtime the servers get: IMAGESEARCH_EMBEDDER_RUNTIME
    rates = [embedder_rate(embedder)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        folder = Path(scratch)
        index_dir, workload = prepare(folder, args.repository)
        print(f"index {index_dir.name}: {len(json.loads(workload.read_text())['item_ids'])} items; CPU cores: {os.cpu_count()}",
              file=sys.stderr)
        # Both servers stay up and the cells alternate between them, so slow drifts on a shared machine
        # (other processes, thermal) hit both modes alike instead of whichever ran second.
        servers = {batching: start_server(index_dir, size, folder / f"server-{batching}.log") for batching, size in MODES.items()}
        try:
            for endpoint in ("similar", "search"):
                for concurrency in levels:
                    for batching, (_, url) in servers.items():
                        rows.append(measure(url, workload, endpoint, batching, concurrency, args))
                        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=60)
    rates.append(embedder_rate(embedder))
    print(f"load average at the end: {', '.join(f'{value:.2f}' for value in os.getloadavg())}; embedder alone before / "
          f"after: {rates[0]:.1f} / {rates[1]:.1f} img/s")
    print(table(rows))
    print()
    print(summary(rows, float(np.mean(rates)), embedder.runtime))


if __name__ == "__main__":
    main()
