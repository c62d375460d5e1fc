"""A real HTTP server on a free loopback port that misbehaves on purpose: redirects, trickles, stalls, lies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

STOP = threading.Event()


class HostileHandler(BaseHTTPRequestHandler):
    image = b""  # set by serve()

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).replace("café", "cafe")  # the non-ASCII name a catalog row asks for, as sent: UTF-8
        route = getattr(self, "route_" + path.strip("/").replace(".", "_").replace("-", "_"), None) \
            if parts.path.isascii() else None
        if route is None:
            self.send_error(404)
            return
        with suppress(BrokenPipeError, ConnectionResetError):
            route(parse_qs(parts.query))

    def _headers(self, status: int, length: int, **extra: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(length))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def route_cafe_png(self, query: dict[str, list[str]]) -> None:
        self.route_ok_png(query)

    def route_ok_png(self, _: dict[str, list[str]]) -> None:
        self._headers(200, len(self.image))
        self.wfile.write(self.image)

    def route_redirect(self, query: dict[str, list[str]]) -> None:
        self._headers(302, 0, Location=query["to"][0])

    def route_loop(self, _: dict[str, list[str]]) -> None:
        self._headers(302, 0, Location="/loop")

    def route_trickle_png(self, _: dict[str, list[str]]) -> None:
        """1 byte per second of a real image: every single read succeeds, the whole takes hours."""
        self._headers(200, len(self.image))
        for byte in self.image:
            if STOP.wait(1.0):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def route_stall_png(self, _: dict[str, list[str]]) -> None:
        """Headers and 10 bytes, then nothing."""
        self._headers(200, len(self.image))
        self.wfile.write(self.image[:10])
        self.wfile.flush()
        STOP.wait(60)

    def route_huge_png(self, _: dict[str, list[str]]) -> None:
        self._headers(200, 10**11)
        self.wfile.write(self.image)


@contextmanager
def serve(image: bytes) -> Iterator[int]:
    """Yield the port of a running hostile server on 127.0.0.1; stop it afterwards."""
    STOP.clear()
    handler = type("Handler", (HostileHandler,), {"image": image})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        STOP.set()
        server.shutdown()
        server.server_close()
