"""The memory for queries over real HTTP: every search reserves its body before reading it and its decode before
decoding, waits (bounded) or gets 503 + Retry-After when they do not fit, and gives everything back however it
ends: answered, refused, timed out or disconnected."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from imagesearch.embedder import Embedder
from serving.app import create_app
from serving.memory_budget import body_bytes, decode_bytes
from tests.conftest import jpeg_bytes
from tests.serving import hostile_inputs as hostile
from tests.serving.conftest import ServerProcess, serve_in_thread, serving_settings, start_server
from tests.serving.hostile_inputs import MULTIPART_TYPE, HttpAnswer, HttpRequest, send

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
MAX_UPLOAD = 4 * MiB
MAX_PIXELS = 1_100_000
BUDGET_MB = 36
BODY = 3_000_000  # one such body fits beside the worst-case decode; two do not (checked below)


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def reserved(url: str) -> float:
    return metric(url, "imagesearch_query_memory_reserved_bytes")


def settle(url: str, timeout_s: float = 10) -> float:
    """The reserved bytes once nothing is in flight (or whatever is left after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while (left := reserved(url)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 0


@pytest.fixture(scope="module")
def small_server(index_a: Path, embedder: Embedder) -> Iterator[str]:
    settings = serving_settings(index_a, max_upload_bytes=MAX_UPLOAD, query_max_image_pixels=MAX_PIXELS,
                                query_memory_budget_mb=BUDGET_MB, client_slot_share=1.0, body_read_timeout_s=1.5,
                                query_memory_wait_s=1.5,
                                batch_max_size=1)
    pool = BUDGET_MB * MiB - decode_bytes(MAX_PIXELS, MAX_UPLOAD)
    assert body_bytes(BODY) <= pool < body_bytes(BODY) + BODY  # one body reading fits, not a second beside a held one
    with serve_in_thread(create_app(settings, embedder)) as url:
        yield url


def raw(body: bytes, content_type: str = "image/png", **fields: object) -> HttpRequest:
    return HttpRequest(path="/v1/search?k=3", headers={"Content-Type": content_type}, body=body, **fields)  # type: ignore[arg-type]


def disconnect_mid_body(url: str) -> None:
    with socket.create_connection(address(url)) as connection:
        connection.sendall(f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           f"Content-Length: {BODY}\r\n\r\n".encode() + b"\0" * 1000)
        time.sleep(0.3)


ENDINGS: list[tuple[str, Callable[[], HttpRequest | None], int | None]] = [
    ("answered", lambda: raw(jpeg_bytes(hostile.query_photo()), "image/jpeg"), 200),
    ("answered-multipart", lambda: raw(hostile.image_form(hostile.png_photo()), MULTIPART_TYPE), 200),
    ("not-an-accepted-format", lambda: raw(hostile.ico_with_png(2000)), 415),
    ("too-large-decoded", lambda: raw(hostile.png_with_header_size(4000, 4000)), 422),
    ("wrong-content-type", lambda: raw(b"{}", "application/json"), 415),
    ("malformed-multipart", lambda: raw(b"\0\xff" * 500, MULTIPART_TYPE), 400),
    ("oversized-chunked", lambda: raw(b"\0" * (MAX_UPLOAD + 200_000), chunked=True), 413),
    ("stalled-body", lambda: raw(b"\0" * BODY, stall=1000), 408),
    ("client-disconnects", lambda: None, None),
]


@pytest.mark.parametrize(("make", "status"), [ending[1:] for ending in ENDINGS], ids=[ending[0] for ending in ENDINGS])
def test_every_reservation_comes_back_however_the_request_ends(
    small_server: str, make: Callable[[], HttpRequest | None], status: int | None
) -> None:
    request = make()
    if request is None:
        disconnect_mid_body(small_server)
    else:
        assert send(*address(small_server), request).status == status
    assert settle(small_server) == 0
    assert metric(small_server, "imagesearch_admitted_requests") == 0
    assert metric(small_server, "imagesearch_query_memory_reserved_peak_bytes") > 0  # something was reserved


def test_big_bodies_wait_their_turn_and_the_last_get_503_with_retry_after(small_server: str) -> None:
    """Six stalled 3 MB uploads: the budget lets one body read at a time (its 2.25 copies), the others wait up to the
    body timeout for it, then get 503; the reserved memory never goes past one body's."""
    waits_before = metric(small_server, "imagesearch_query_memory_waits_total")
    answers: list[HttpAnswer] = []
    stalled = [threading.Thread(target=lambda: answers.append(send(*address(small_server), raw(b"\0" * BODY, stall=1000))))
               for _ in range(6)]
    for thread in stalled:
        thread.start()
    seen = []
    while any(thread.is_alive() for thread in stalled):
        seen.append(reserved(small_server))
        time.sleep(0.05)
    assert max(seen) == body_bytes(BODY), seen
    statuses = sorted(answer.status for answer in answers)
    assert set(statuses) <= {408, 503} and statuses.count(503) >= 3, statuses
    assert all(answer.headers["retry-after"] == "1" and answer.json()["error"] == "overloaded"
               for answer in answers if answer.status == 503)
    assert metric(small_server, "imagesearch_query_memory_waits_total") >= waits_before + 5
    assert settle(small_server) == 0
    answer = send(*address(small_server), raw(jpeg_bytes(hostile.query_photo()), "image/jpeg"))
    assert answer.status == 200  # and the server serves as before


@pytest.fixture(scope="module")
def budget_server(index_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("budget-server")
    shutil.copytree(index_a, folder / "index")
    server = start_server(folder / "index", folder / "server.log", env={
        "IMAGESEARCH_QUERY_MEMORY_BUDGET_MB": "128", "IMAGESEARCH_CLIENT_SLOT_SHARE": "1", "IMAGESEARCH_BATCH_MAX_SIZE": "1",
        "IMAGESEARCH_BODY_READ_TIMEOUT_S": "60", "IMAGESEARCH_QUERY_MEMORY_WAIT_S": "60"})
    yield server
    server.stop()


def test_a_burst_of_maximum_size_uploads_stays_within_the_budget(budget_server: ServerProcess) -> None:
    """24 concurrent 10 MiB multipart uploads that all decode: without the budget each would hold its body three
    times over while read and twice while decoded (24 x ~40 MiB, about 1 GB); with a 128 MiB budget the server's
    RSS grows by about that budget, and every search is answered."""
    image = hostile.noise_png(10 * MiB - 80_000)
    form = hostile.image_form(image)
    host, port = address(budget_server.url)
    server = psutil.Process(budget_server.process.pid)
    assert send(host, port, HttpRequest(path="/v1/search?k=1", headers={"Content-Type": MULTIPART_TYPE},
                                        body=form), 120).status == 200  # the allocator's first growth
    idle = server.memory_info().rss
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(send(host, port, HttpRequest(
        path="/v1/search?k=1", headers={"Content-Type": MULTIPART_TYPE}, body=form), 300).status)) for _ in range(24)]
    for thread in threads:
        thread.start()
    peak = idle
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.01)
    assert statuses == [200] * 24, statuses
    grown = (peak - idle) / MiB
    assert grown < 128 + 100, f"peak RSS {grown:.0f} MiB over idle"
    assert metric(budget_server.url, "imagesearch_query_memory_reserved_peak_bytes") <= 128 * MiB
    assert settle(budget_server.url) == 0
