"""Search service under load over real HTTP: latency percentiles and throughput, micro-batching on vs off.

    PYTHONPATH=. .venv/bin/python bench/serve.py [--seconds 10] [--concurrency 1,8,32]

Fetches the latest committed index from the model repository (as the initContainer does; run
``make demo`` first), starts one ``python -m serving.app`` with micro-batching on (batch_max_size 16)
and one with it off (1), and drives ``GET /v1/items/{id}/similar`` and ``POST /v1/search`` (real JPEG
photos, raw image/jpeg bodies) at each concurrency from a separate load-generator process
(bench/loadgen.py), alternating between the two servers. Prints a Markdown table. Never run as a test.
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

from bench.embed import jpegs
from imagesearch.artifacts import fetch, latest_version
from imagesearch.index_store import ITEMS, read_items
from imagesearch.repository import open_repository
from imagesearch.settings import PROJECT_ROOT, get_settings

MODES = {"on": 16, "off": 1}  # batch_max_size per micro-batching mode
BATCH_METRIC = re.compile(r"^imagesearch_inference_batch_size_(sum|count) (\S+)$", re.MULTILINE)


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


def batch_totals(url: str) -> tuple[float, float]:
    found = dict((name, float(value)) for name, value in BATCH_METRIC.findall(httpx.get(f"{url}/metrics").text))
    return found.get("sum", 0.0), found.get("count", 0.0)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def measure(url: str, workload: Path, endpoint: str, batching: str, concurrency: int, args: argparse.Namespace) -> Row:
    before = batch_totals(url)
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--workload", str(workload), "--endpoint", endpoint,
        "--concurrency", str(concurrency), "--warmup", str(args.warmup), "--seconds", str(args.seconds),
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                            capture_output=True, text=True, check=True)
    after = batch_totals(url)
    data = json.loads(result.stdout)
    latencies = data["latencies_s"]
    batches = after[1] - before[1]
    return Row(
        endpoint=endpoint, batching=batching, concurrency=concurrency, requests=len(latencies),
        throughput=len(latencies) / data["seconds"], p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99), failed=sum(count for status, count in data["statuses"].items() if status != "200"),
        mean_batch=(after[0] - before[0]) / batches if batches else None,
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
        "| endpoint | micro-batching | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms | failed | mean batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        batch = f"{row.mean_batch:.1f}" if row.mean_batch is not None else "-"
        lines.append(
            f"| {row.endpoint} | {row.batching} | {row.concurrency} | {row.requests} | {row.throughput:.1f} | {row.p50_ms:.1f} | "
            f"{row.p95_ms:.1f} | {row.p99_ms:.1f} | {row.failed} | {batch} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    def find(endpoint: str, batching: str, concurrency: int) -> Row | None:
        return next((r for r in rows if (r.endpoint, r.batching, r.concurrency) == (endpoint, batching, concurrency)), None)

    lines = []
    if similar := find("similar", "on", 8):
        lines.append(f"- /similar p99 at concurrency 8: {similar.p99_ms:.1f} ms (target < 10 ms)")
    on, off = find("search", "on", 32), find("search", "off", 32)
    if on and off and off.throughput:
        lines.append(f"- image search throughput at concurrency 32, batching on / off: {on.throughput / off.throughput:.2f}x "
                     "(target >= 1.5x)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repository", default=get_settings().storage.model_repository)
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each cell")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
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
    print(table(rows))
    print()
    print(summary(rows))


if __name__ == "__main__":
    main()
