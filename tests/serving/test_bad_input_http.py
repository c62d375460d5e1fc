"""Hostile clients over real HTTP against ``python -m serving.app``: every case gets a clear JSON answer (a 4xx, or
200 for odd but valid images), never a 5xx or a dead server, and the server is still ready afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from tests.conftest import jpeg_bytes
from tests.serving import hostile_inputs as hostile
from tests.serving.conftest import ServerProcess, start_server
from tests.serving.hostile_inputs import MULTIPART_TYPE, HttpRequest, send

pytestmark = pytest.mark.slow

MAX_UPLOAD_BYTES = 1024 * 1024
BODY_READ_TIMEOUT_S = 2
SERVER_ENV = {"IMAGESEARCH_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES), "IMAGESEARCH_BODY_READ_TIMEOUT_S": str(BODY_READ_TIMEOUT_S)}


def raw(content: bytes, content_type: str = "image/png", query: str = "") -> HttpRequest:
    return HttpRequest(path=f"/v1/search{query}", headers={"Content-Type": content_type}, body=content)


def form(body: bytes, content_type: str = MULTIPART_TYPE) -> HttpRequest:
    return HttpRequest(headers={"Content-Type": content_type}, body=body)


def good_image() -> bytes:
    return jpeg_bytes(hostile.query_photo())


def search_with(query: str) -> HttpRequest:
    return raw(good_image(), "image/jpeg", query)


def similar_with(query: str, item: str = "coffee") -> HttpRequest:
    return HttpRequest(method="GET", path=f"/v1/items/{item}/similar{query}")


# (case id, the request, expected status, expected error tag or None for a 200 answer)
CASES: list[tuple[str, Callable[[], HttpRequest], int, str | None]] = [
    # decompression bombs and huge dimensions in small files: refused from the header, before decoding
    ("png-bomb-1bit-8000x8000", lambda: raw(hostile.png_bomb()), 422, "image_too_large"),
    ("png-6300x6300-small-file", lambda: raw(hostile.huge_small_png()), 422, "image_too_large"),
    ("png-header-65535x65535", lambda: raw(hostile.png_with_header_size(65535, 65535)), 422, "image_too_large"),
    ("jpeg-header-65000x65000", lambda: raw(hostile.jpeg_with_header_size(65000, 65000), "image/jpeg"), 422,
     "image_too_large"),
    ("gif-screen-60000x60000", lambda: raw(hostile.gif_with_screen_size(60000, 60000), "image/gif"), 422, "image_too_large"),
    ("png-bomb-in-multipart", lambda: form(hostile.image_form(hostile.png_bomb())), 422, "image_too_large"),
    ("png-strip-100000x1", lambda: raw(hostile.png_with_header_size(100000, 1)), 422, "image_too_small"),
    # formats the API does not document, containers that decode another size than they declare: refused unread
    ("ico-holding-6000px-png", lambda: raw(hostile.ico_with_png(6000)), 415, "image_not_an_image"),
    ("jpeg2000", lambda: raw(hostile.jpeg2000()), 415, "image_not_an_image"),
    ("tga", lambda: raw(hostile.encoded(hostile.query_photo(), "TGA")), 415, "image_not_an_image"),
    ("png-16mpx-corrupt", lambda: raw(hostile.corrupt_png(4000, 4000)), 422, "image_truncated"),
    # truncated files
    ("jpeg-truncated-half", lambda: raw(hostile.truncated(good_image()), "image/jpeg"), 422, "image_truncated"),
    ("png-truncated-half", lambda: raw(hostile.truncated(hostile.png_photo())), 422, "image_truncated"),
    ("png-signature-only", lambda: raw(b"\x89PNG\r\n\x1a\n"), 415, "image_not_an_image"),
    # odd modes: valid images, answered
    ("jpeg-cmyk", lambda: raw(hostile.cmyk_jpeg(), "image/jpeg"), 200, None),
    ("png-16bit-grey", lambda: raw(hostile.png_16bit()), 200, None),
    ("png-palette-transparency", lambda: raw(hostile.png_palette_transparency()), 200, None),
    ("png-1bit", lambda: raw(hostile.png_1bit()), 200, None),
    ("tiff-32bit-float", lambda: raw(hostile.tiff_float(), "image/tiff"), 200, None),
    # polyglots: only the pixels are used; markup is never an image
    ("png-with-html-appended", lambda: raw(hostile.png_photo() + b"<html><script>alert(1)</script>"),
     200, None),
    ("gif-header-javascript", lambda: raw(b"GIF89a/*\x00\x00*/=alert(1);//" + b"\x00" * 64, "image/gif"), 415,
     "image_not_an_image"),
    ("html-sent-as-png", lambda: raw(b"<!doctype html><html><script>alert(1)</script></html>"), 415, "image_not_an_image"),
    ("svg-with-script", lambda: raw(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                                    "image/svg+xml"), 415, "image_not_an_image"),
    # stalled and oversized bodies
    ("stalled-raw-body", lambda: HttpRequest(headers={"Content-Type": "image/png"}, body=b"\x89PNG" + b"\0" * 50_000,
                                             stall=1000), 408, "body_timeout"),
    ("stalled-multipart-body", lambda: HttpRequest(headers={"Content-Type": MULTIPART_TYPE},
                                                   body=hostile.image_form(b"\0" * 50_000), stall=1000), 408, "body_timeout"),
    ("oversized-content-length", lambda: HttpRequest(headers={"Content-Type": "image/png"}, announced=50_000_000), 413,
     "payload_too_large"),
    ("oversized-chunked", lambda: HttpRequest(headers={"Content-Type": "image/png"}, body=b"\0" * (MAX_UPLOAD_BYTES + 200_000),
                                              chunked=True), 413, "payload_too_large"),
    ("oversized-multipart", lambda: form(hostile.image_form(b"\0" * (MAX_UPLOAD_BYTES + 1000))), 413, "payload_too_large"),
    ("empty-body", lambda: raw(b""), 400, "bad_request"),
    # broken multipart
    ("multipart-without-boundary", lambda: form(hostile.image_form(good_image()), "multipart/form-data"), 400, "bad_request"),
    ("multipart-unterminated", lambda: form(hostile.multipart([("image", "q.jpg", "image/jpeg", good_image())], close=False)),
     400, "bad_request"),
    ("multipart-garbage", lambda: form(b"\x00\xff" * 500), 400, "bad_request"),
    ("multipart-wrong-field", lambda: form(hostile.multipart([("photo", "q.jpg", "image/jpeg", good_image())])), 400,
     "bad_request"),
    ("multipart-text-value", lambda: form(hostile.multipart([("image", None, "text/plain", b"not a file")])), 400,
     "bad_request"),
    ("multipart-two-images", lambda: form(hostile.multipart([("image", "a.jpg", "image/jpeg", good_image())] * 2)), 400,
     "bad_request"),
    ("multipart-500-parts", lambda: form(hostile.multipart([("x", None, "text/plain", b"1")] * 500)), 400, "bad_request"),
    # wrong content types
    ("json-body", lambda: raw(b"{}", "application/json"), 415, "unsupported_media_type"),
    ("text-body", lambda: raw(b"hello", "text/plain"), 415, "unsupported_media_type"),
    ("urlencoded-form", lambda: raw(b"image=abc", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"),
    ("no-content-type", lambda: HttpRequest(body=good_image()), 415, "unsupported_media_type"),
    # absurd parameters
    ("k-negative", lambda: search_with("?k=-1"), 400, "bad_request"),
    ("k-billion", lambda: search_with("?k=1000000000"), 400, "bad_request"),
    ("k-not-a-number", lambda: search_with("?k=abc"), 400, "bad_request"),
    ("min-price-nan", lambda: search_with("?min_price=NaN"), 400, "bad_request"),
    ("max-price-infinite", lambda: search_with("?max_price=inf"), 400, "bad_request"),
    ("category-10k-chars", lambda: search_with("?category=" + "x" * 10_000), 400, "bad_request"),
    ("unknown-filter", lambda: search_with("?colour=red"), 400, "bad_request"),
    ("similar-k-zero", lambda: similar_with("?k=0"), 400, "bad_request"),
    ("similar-price-nan", lambda: similar_with("?max_price=nan"), 400, "bad_request"),
    ("similar-unknown-filter", lambda: similar_with("?brand=acme"), 400, "bad_request"),
    ("similar-item-id-5k-chars", lambda: similar_with("", "x" * 5000), 404, "unknown_item"),
]


@pytest.fixture(scope="module")
def hostile_server(index_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("hostile-server")
    shutil.copytree(index_a, folder / "index")
    server = start_server(folder / "index", folder / "server.log", env=SERVER_ENV)
    yield server
    server.stop()


def address(server: ServerProcess) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@pytest.mark.parametrize(("request_for", "status", "error"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_hostile_request_gets_a_clear_json_answer(
    hostile_server: ServerProcess, request_for: Callable[[], HttpRequest], status: int, error: str | None
) -> None:
    answer = send(*address(hostile_server), request_for())
    assert answer.status == status, answer.body[:500]
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body = answer.json()
    if error is None:
        assert body["results"] and body["version"], body
    else:
        assert body["status"] == status and body["error"] == error and body["detail"], body


def test_failed_decodes_and_refused_containers_leave_no_memory_behind(hostile_server: ServerProcess) -> None:
    """Twelve corrupt 16-Mpx PNGs (each fills a 46 MiB image before failing) and twelve icons holding a 137 MiB
    PNG, one after another: the server's RSS grows by at most about one decode, not by one per request (the
    decoder before this grew it by 366 MiB over the twelve PNGs alone)."""
    host, port = address(hostile_server)
    server = psutil.Process(hostile_server.process.pid)
    assert send(host, port, raw(hostile.corrupt_png(4000, 4000))).status == 422  # the allocator's first growth
    before = server.memory_info().rss
    for request in [raw(hostile.corrupt_png(4000, 4000))] * 12 + [raw(hostile.ico_with_png(6000))] * 12:
        assert send(host, port, request).status in (415, 422)
    grown = server.memory_info().rss - before
    assert grown < 200 * 1024 * 1024, f"the server's RSS grew by {grown / 2**20:.0f} MiB"


def test_the_server_is_ready_and_answers_after_the_whole_suite(hostile_server: ServerProcess) -> None:
    """Runs after the cases (pytest keeps file order): no case killed, wedged or leaked into the server."""
    host, port = address(hostile_server)
    assert send(host, port, HttpRequest(method="GET", path="/readyz")).status == 200
    answer = send(host, port, raw(good_image(), "image/jpeg", "?k=3"))
    assert answer.status == 200 and answer.json()["results"][0]["item_id"].startswith("astronaut")
    metrics = send(host, port, HttpRequest(method="GET", path="/metrics")).body.decode()
    assert 'status="5' not in metrics and "imagesearch_admitted_requests 0.0" in metrics
    assert hostile_server.process.poll() is None
    assert "Traceback" not in hostile_server.log.read_text()
