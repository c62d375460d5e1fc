"""A closed-loop HTTP load generator, run as its own process by ``bench/serve.py``.

    python -m bench.loadgen --url URL --workload FILE --endpoint similar|search --concurrency N --seconds S

Each of N keep-alive connections sends its next request as soon as the previous answer arrives. Prints
one JSON line: latencies of the measured window (after a warm-up) and a count of answers by status.
The client is a minimal HTTP/1.1 one on asyncio streams: a general-purpose client such as httpx spends
several times the server's CPU per request, which on a 2-core machine would measure the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

HEADER_END = b"\r\n\r\n"


def requests_for(endpoint: str, workload: dict[str, list[str]], host: str) -> list[bytes]:
    """Every distinct request of the workload, ready to write to a connection."""
    if endpoint == "similar":
        return [
            f"GET /v1/items/{item_id}/similar?k=10 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for item_id in workload["item_ids"]
        ]
    requests = []
    for path in workload["images"]:
        body = Path(path).read_bytes()
        head = f"POST /v1/search?k=10 HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
        requests.append(head.encode() + body)
    return requests


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request and read its whole answer; the status code."""
    writer.write(request)
    head = await reader.readuntil(HEADER_END)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    length = next((int(value) for name, value in headers.items() if name.strip().lower() == "content-length"), None)
    if length is None:
        raise ValueError(f"answer without Content-Length: {lines[0]}")
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def run(url: str, requests: list[bytes], concurrency: int, warmup_s: float, seconds: float) -> dict[str, object]:
    target = urlparse(url)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    measure_from = time.perf_counter() + warmup_s
    stop_at = measure_from + seconds

    async def connection(rng: random.Random) -> None:
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        try:
            while (start := time.perf_counter()) < stop_at:
                try:
                    outcome = str(await exchange(reader, writer, rng.choice(requests)))
                except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                    outcome = type(exc).__name__
                    writer.close()
                    reader, writer = await asyncio.open_connection(target.hostname, target.port)
                if start >= measure_from:
                    statuses[outcome] += 1
                    if outcome == "200":
                        latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    await asyncio.gather(*(connection(random.Random(seed)) for seed in range(concurrency)))
    return {"latencies_s": latencies, "statuses": dict(statuses), "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--workload", type=Path, required=True, help="JSON: item_ids and JPEG paths")
    parser.add_argument("--endpoint", choices=("similar", "search"), required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    requests = requests_for(args.endpoint, json.loads(args.workload.read_text()), urlparse(args.url).netloc)
    json.dump(asyncio.run(run(args.url, requests, args.concurrency, args.warmup, args.seconds)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
