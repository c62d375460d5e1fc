"""How long a hostile image host holds one fetch: a per-read timeout (the baseline) vs the input policy's deadline.

    PYTHONPATH=. .venv/bin/python bench/fetch_deadline.py

A real loopback server trickles a 12-byte body at 1 byte/s, or sends 10 bytes and stalls. The baseline
(httpx, 2 s per-read timeout, as the pipeline fetched before) is held as long as the server likes; the
policy lets go within its total deadline either way, and drops a trickle early on its minimum rate.
"""

from __future__ import annotations

import time

import httpx

from imagesearch.errors import ImageError
from imagesearch.input_policy import InputPolicy
from imagesearch.settings import InputSettings
from imagesearch.uri_reader import read_bytes
from tests.security.hostile_server import serve

BODY = b"\x89PNG\r\n\x1a\n1234"  # 12 bytes: 12 s at 1 byte/s
BASELINE_CUT_S = 20.0


def baseline(url: str) -> str:
    began = time.monotonic()
    try:
        with httpx.stream("GET", url, timeout=2.0) as response:
            for _ in response.iter_bytes():
                if time.monotonic() - began > BASELINE_CUT_S:
                    return f"still held after {BASELINE_CUT_S:.0f} s (cut)"
        return "complete"
    except httpx.TimeoutException:
        return "timeout"


def with_policy(url: str, policy: InputPolicy) -> str:
    try:
        read_bytes(url, policy)
        return "complete"
    except ImageError as exc:
        return exc.reason


def main() -> None:
    # The bench's own loopback server is the one address allowed past the private-address refusal.
    loopback = InputSettings(image_schemes="http", fetch_allowed_networks="127.0.0.1/32")
    short = InputPolicy.for_images(loopback.model_copy(update={"fetch_timeout_s": 2.0}))
    default = InputPolicy.for_images(loopback)
    print("| server | fetch | outcome | held for (s) |\n|---|---|---|---|")
    with serve(BODY) as port:
        for server, path in (("1 byte/s trickle", "trickle.png"), ("10 bytes, then stalls", "stall.png")):
            url = f"http://127.0.0.1:{port}/{path}"
            for name, fetch in (("per-read timeout 2 s (baseline)", baseline),
                                ("input policy: 2 s deadline, 16 KiB/s", lambda u: with_policy(u, short)),
                                ("input policy: defaults (10 s deadline, 16 KiB/s)", lambda u: with_policy(u, default))):
                began = time.monotonic()
                outcome = fetch(url)
                print(f"| {server} | {name} | {outcome} | {time.monotonic() - began:.1f} |", flush=True)


if __name__ == "__main__":
    main()
