"""Connection attacks against one search server per connection mechanism, in one run: ``bench/abuse.py --connections``.

Mechanisms (each a fresh server over the same index, one after the other):

- ``as on main``: uvicorn's own options as main ran them before the connection limits: the stock httptools
  protocol, ``limit_concurrency`` 256, ``timeout_keep_alive`` 5 s, and no per-client share of admission slots;
- ``guarded``: ``python -m serving.app`` as shipped (serving/connections.py, IMAGESEARCH_CLIENT_SLOT_SHARE).

Attacks (each for ``hold_s``), from their own process so the legitimate client's timings measure the server and
not the benchmark: ``idle`` connections that send nothing and ``slow_header`` ones that trickle a header byte
every 0.5 s, once all from one peer address (127.0.0.2) and once spread over one address each (127.1.x.y); then
``slow_body`` uploads that trickle their body. Every attacker reconnects 50 ms after the server answers it or cuts it off.
Meanwhile a legitimate client on 127.0.0.1 searches in a loop on a kept-alive connection, and probes
``/healthz`` and ``/readyz`` the way the kubelet does (a new connection each, every 0.2 s); a probe succeeds
with a 200 within 1 s, whole request wall time. A request with no answer in 10 s (probes) or 30 s (searches)
is a hang.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import ipaddress
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from bench.serve import start_server
from imagesearch.settings import PROJECT_ROOT, get_settings
from serving.connections import raise_open_files_limit

ONE_PEER = "127.0.0.2"  # another peer address than the legitimate client's 127.0.0.1: the server tells them apart
SPREAD_FROM = ipaddress.IPv4Address("127.1.0.1")  # attacker n of a spread attack connects from SPREAD_FROM + n
RECONNECT_S = 0.05
TRICKLE_S = 0.5
PROBE_EVERY_S = 0.2
PROBE_DEADLINE_S = 1.0
PROBE_HANG_S = 10.0
SEARCH_HANG_S = 30.0
MIB = 1024 * 1024

SLOW_HEADERS = b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nX-Slow: " + b"a" * 4096
BODY_HEADERS = b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n"


@dataclass(frozen=True)
class Flood:
    """``count`` attackers that send ``first`` at once, then a byte of ``trickle`` every 0.5 s."""

    count: int
    first: bytes
    trickle: bytes
    spread: bool  # one peer address per attacker, else all from ONE_PEER


@dataclass(frozen=True)
class Attack:
    name: str
    floods: tuple[Flood, ...]


@dataclass(frozen=True)
class Mechanism:
    name: str
    explained: str
    argv: tuple[str, ...]
    env: dict[str, str]


MECHANISMS = (
    Mechanism("as on main", "uvicorn's httptools protocol, limit_concurrency 256, timeout_keep_alive 5 s, no client "
              "slot share (IMAGESEARCH_CLIENT_SLOT_SHARE=1)", ("-m", "bench.abuse_connections", "serve"),
              {"IMAGESEARCH_CLIENT_SLOT_SHARE": "1"}),
    Mechanism("guarded", "`python -m serving.app` as shipped: serving/connections.py (header deadline, per-peer and "
              "per-worker connection caps) and the client slot share, default settings", ("-m", "serving.app"), {}),
)


def attacks(idle: int, slow_header: int, slow_body: int) -> list[Attack]:
    def headers(spread: bool) -> tuple[Flood, ...]:
        offset = len(SLOW_HEADERS[:20])
        return (Flood(idle, b"", b"", spread), Flood(slow_header, SLOW_HEADERS[:offset], SLOW_HEADERS[offset:], spread))

    return [
        Attack(f"{idle:,} idle + {slow_header} slow-header, one peer", headers(False)),
        Attack(f"{idle:,} idle + {slow_header} slow-header, {idle + slow_header:,} peers", headers(True)),
        Attack(f"{slow_body} slow bodies, one peer, reconnecting after each 408", (Flood(slow_body, BODY_HEADERS, b"\xff" * 1000,
                                                                                         False),)),
    ]


# --- the attacker, run as ``python -m bench.abuse_connections attack``: its own process, its own CPU time -----------

async def answer_of(reader: asyncio.StreamReader) -> bytes:
    """The head of the server's answer, or what it sent (usually nothing) before it closed the connection."""
    answer = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in answer and (chunk := await reader.read(4096)):
            answer += chunk
    return answer


async def flood(host: str, port: int, spec: Flood, first_peer: int, until: float, seen: Counter[str]) -> None:
    async def attacker(number: int) -> None:
        local = str(SPREAD_FROM + first_peer + number) if spec.spread else ONE_PEER
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
            except OSError as exc:
                seen[f"connect failed: {type(exc).__name__}"] += 1
                await asyncio.sleep(RECONNECT_S * 2)
                continue
            seen["opened"] += 1
            answer = asyncio.ensure_future(answer_of(reader))
            with contextlib.suppress(OSError):
                writer.write(spec.first)
                for byte in spec.trickle:
                    await asyncio.wait([answer], timeout=TRICKLE_S)
                    if answer.done() or time.monotonic() >= until:
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
            # Hold the connection until it is answered or cut off; then start again, as a client retrying would.
            await asyncio.wait([answer], timeout=max(until - time.monotonic(), 0))
            writer.close()
            if not answer.done():
                answer.cancel()
                seen["held to the end"] += 1
            elif (got := answer.result()).startswith(b"HTTP/"):
                seen[got.split(b" ", 2)[1].decode()] += 1
            else:
                seen["closed, no answer"] += 1
            await asyncio.sleep(RECONNECT_S)

    await asyncio.gather(*(attacker(number) for number in range(spec.count)))


async def run_attack(host: str, port: int, floods: list[Flood], hold_s: float) -> Counter[str]:
    print("started", flush=True)  # the legitimate client's clock starts now
    until = time.monotonic() + hold_s
    seen: Counter[str] = Counter()
    offsets = [sum(spec.count for spec in floods[:position]) for position in range(len(floods))]
    await asyncio.gather(*(flood(host, port, spec, offset, until, seen) for spec, offset in zip(floods, offsets, strict=True)))
    return seen


def start_attack(url: str, attack: Attack, hold_s: float) -> subprocess.Popen[str]:
    floods = [{"count": spec.count, "first": spec.first.hex(), "trickle": spec.trickle.hex(), "spread": spec.spread}
              for spec in attack.floods]
    argv = [sys.executable, "-m", "bench.abuse_connections", "attack", url, str(hold_s), json.dumps(floods)]
    attacker = subprocess.Popen(argv, cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                                stdout=subprocess.PIPE, text=True)
    assert attacker.stdout is not None and attacker.stdout.readline() == "started\n", "the attacker did not start"
    return attacker


# --- the legitimate client and the table ------------------------------------------------------------------------------

@dataclass
class Legitimate:
    searches: Counter[str] = field(default_factory=Counter)
    probes: Counter[str] = field(default_factory=Counter)
    probe_seconds: list[float] = field(default_factory=list)

    def statuses(self) -> Counter[str]:
        return self.searches + self.probes


def probe(host: str, port: int, path: str) -> tuple[str, float]:
    """``GET path`` on a new connection, as the kubelet probes: its status (or error) and whole wall time."""
    began = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_HANG_S)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        outcome = str(response.status)
    except TimeoutError:
        outcome = "hang"
    except (OSError, http.client.HTTPException) as exc:
        outcome = type(exc).__name__
    finally:
        connection.close()
    return outcome, time.perf_counter() - began


def probe_loop(url: str, until: float, seen: Legitimate) -> None:
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 0
    paths = ("/healthz", "/readyz")
    count = 0
    while time.monotonic() < until:
        outcome, seconds = probe(host, port, paths[count % 2])
        count += 1
        seen.probes[outcome if outcome != "200" or seconds <= PROBE_DEADLINE_S else "200 late"] += 1
        seen.probe_seconds.append(seconds)
        time.sleep(max(PROBE_EVERY_S - seconds, 0))


def search_loop(url: str, until: float, image: bytes, seen: Legitimate) -> None:
    with httpx.Client(base_url=url, timeout=SEARCH_HANG_S) as searches:
        while time.monotonic() < until:
            try:
                found = searches.post("/v1/search?k=5", content=image, headers={"Content-Type": "image/jpeg"})
                seen.searches[str(found.status_code)] += 1
            except httpx.TimeoutException:
                seen.searches["hang"] += 1
            except httpx.HTTPError as exc:
                seen.searches[type(exc).__name__] += 1
            time.sleep(0.1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


def counted(counts: Counter[str]) -> str:
    return ", ".join(f"{count:,} x {status}" for status, count in sorted(counts.items(), key=lambda item: -item[1]))


def rate(counts: Counter[str], good: str = "200") -> str:
    total = sum(counts.values())
    return f"{counts[good] / max(total, 1):.1%} of {total:,}"


def ready_now(url: str) -> str:
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 0
    return probe(host, port, "/readyz")[0]


def attack_row(url: str, process: psutil.Process, idle_mib: float, mechanism: str, attack: Attack, hold_s: float,
               image: bytes) -> str:
    attacker = start_attack(url, attack, hold_s)
    until = time.monotonic() + hold_s
    seen = Legitimate()
    legitimate = [threading.Thread(target=probe_loop, args=(url, until, seen)),
                  threading.Thread(target=search_loop, args=(url, until, image, seen))]
    for thread in legitimate:
        thread.start()
    peak = process.memory_info().rss
    cpu_before = sum(process.cpu_times()[:2])
    while any(thread.is_alive() for thread in legitimate):
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.05)
    cpu_s = sum(process.cpu_times()[:2]) - cpu_before
    output, _ = attacker.communicate(timeout=60)
    attacked = Counter(json.loads(output))
    opened = attacked.pop("opened", 0)
    fives = sum(count for status, count in seen.statuses().items() if status.startswith("5"))
    hangs = seen.statuses()["hang"]
    return (f"| {attack.name} | {mechanism} | {opened:,} ({counted(attacked)}) | {rate(seen.searches)} | "
            f"{rate(seen.probes)} ({counted(seen.probes)}) | {max(seen.probe_seconds, default=float('nan')):.2f} | "
            f"{percentile(seen.probe_seconds, 0.99):.3f} | {fives:,} | {hangs} | {cpu_s:.0f} | {os.getloadavg()[0]:.1f} | "
            f"{peak / MIB - idle_mib:+.0f} (idle {idle_mib:.0f}) | {ready_now(url)} |")


def connection_table(index_dir: Path, folder: Path, image: bytes, hold_s: float, idle: int, slow_header: int,
                     slow_body: int) -> str:
    rows = []
    for number, mechanism in enumerate(MECHANISMS):
        server, url = start_server(index_dir, get_settings().serving.batch_max_size, folder / f"server-{number}.log",
                                   mechanism.argv, mechanism.env)
        try:
            process = psutil.Process(server.pid)
            idle_mib = process.memory_info().rss / MIB
            rows += [attack_row(url, process, idle_mib, mechanism.name, attack, hold_s, image)
                     for attack in attacks(idle, slow_header, slow_body)]
        finally:
            server.terminate()
            server.wait(timeout=60)
    names = "\n".join(f"- **{mechanism.name}**: {mechanism.explained}" for mechanism in MECHANISMS)
    return "\n".join([
        f"Attacks from their own process, {hold_s:g} s each; legitimate client on 127.0.0.1: searches on a kept-alive "
        f"connection, probes on a new connection every {PROBE_EVERY_S:g} s (a success: 200 within {PROBE_DEADLINE_S:g} s). "
        f"{os.cpu_count()} CPUs; the load average is the machine's at the end of each attack.",
        "",
        names,
        "",
        "| attack | mechanism | attacker connections opened (what they got) | legitimate searches 200 | probes 200 within 1 s "
        "| slowest probe s | p99 probe s | legitimate 5xx | hangs | server CPU s | load avg 1 min | peak RSS over idle MiB "
        "| /readyz afterwards |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])


def serve_as_on_main() -> None:
    """The server with main's uvicorn options (serving/app.py's ``main`` before the connection limits)."""
    import uvicorn

    settings = get_settings().serving
    uvicorn.run("serving.app:create_app", factory=True, host=settings.host, port=settings.port, workers=1,
                access_log=False, limit_concurrency=256, timeout_keep_alive=5,
                timeout_graceful_shutdown=settings.shutdown_timeout_s)


def main() -> None:
    parser = argparse.ArgumentParser(description="internal: bench/abuse.py --connections runs this module")
    commands = parser.add_subparsers(dest="command", required=True)
    attack = commands.add_parser("attack", help="run one attack and print what the attackers saw as JSON")
    attack.add_argument("url")
    attack.add_argument("hold_s", type=float)
    attack.add_argument("floods", type=json.loads)
    commands.add_parser("serve", help="run the server with main's uvicorn options (the baseline)")
    args = parser.parse_args()
    if args.command == "serve":
        serve_as_on_main()
        return
    floods = [Flood(spec["count"], bytes.fromhex(spec["first"]), bytes.fromhex(spec["trickle"]), spec["spread"])
              for spec in args.floods]
    raise_open_files_limit(sum(spec.count for spec in floods) + 256)
    host, port = urlsplit(args.url).hostname or "", urlsplit(args.url).port or 0
    print(json.dumps(asyncio.run(run_attack(host, port, floods, args.hold_s))))


if __name__ == "__main__":
    main()
