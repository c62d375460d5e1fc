"""A real HTTP server on a free loopback port that fails the way networks and stores do: a 503 for everything, a
404, or a body that trickles in far too slowly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = threading.Event()


class FlakyHandler(BaseHTTPRequestHandler):
    """``/missing...``: 404. ``/slow...``: a 200 whose body comes one byte at a time, 0.6 s apart. Else: 503."""

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self) -> None:
        with suppress(BrokenPipeError, ConnectionResetError):
            if self.path.startswith("/slow"):
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not STOP.wait(0.6):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                return
            status = 404 if self.path.startswith("/missing") else 503
            body = b'{"error": {"code": %d, "message": "try again later"}}' % status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


@contextmanager
def flaky_server() -> Iterator[str]:
    """Yield ``http://127.0.0.1:<port>`` of a running flaky server; stop it afterwards."""
    STOP.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        STOP.set()
        server.shutdown()
        server.server_close()
