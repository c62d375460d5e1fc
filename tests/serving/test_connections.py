"""serving/connections.py over real HTTP: idle, slow-header and flooding connections are cut off, probes answer, and
the per-peer count that caps them follows the connections."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from imagesearch.settings import get_settings
from serving.connections import PROTOCOL_PATH, open_by_peer
from tests.serving.conftest import free_port, start_server

pytestmark = pytest.mark.slow


def closed_within(connection: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``connection`` (EOF or reset), or None if it was still open after ``seconds``."""
    began = time.monotonic()
    connection.settimeout(seconds)
    try:
        while connection.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - began


def test_idle_slow_header_and_flooding_connections_are_cut_off_while_probes_answer(index_a: Path, tmp_path: Path) -> None:
    env = {"IMAGESEARCH_HEADER_READ_TIMEOUT_S": "1", "IMAGESEARCH_MAX_CONNECTIONS_PER_CLIENT": "50"}
    server = start_server(index_a, tmp_path / "server.log", env=env)
    address = (urlsplit(server.url).hostname or "", urlsplit(server.url).port or 0)
    try:
        with ExitStack() as stack:
            def connect() -> socket.socket:
                connection = stack.enter_context(socket.socket())
                connection.bind(("127.0.0.2", 0))  # the attacker: another peer address than the probes'
                connection.connect(address)
                return connection

            idle = connect()
            slow = connect()
            slow.sendall(b"GET /healthz HTTP/1.1\r\n")
            flood = [connect() for _ in range(60)]  # 2 + 60 from one peer: the last 12 are over its 50
            with httpx.Client(base_url=server.url, timeout=1) as probes:
                assert probes.get("/healthz").status_code == 200
                assert probes.get("/readyz").status_code == 200
            slow.sendall(b"Host: x\r\n")  # still trickling: the deadline counts from the connection's opening
            assert [closed_within(connection, 0.5) is not None for connection in flood[-12:]] == [True] * 12
            for connection in (idle, slow):
                closed_after = closed_within(connection, 5)
                assert closed_after is not None and closed_after < 2, closed_after
    finally:
        server.stop()


async def answer_ok(scope: dict[str, object], receive: object, send: Callable[[dict[str, object]], Awaitable[None]]) -> None:
    """The smallest ASGI app: what is under test here is the protocol in front of it."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def guarded_server_in_thread() -> Iterator[uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(answer_ok, host="127.0.0.1", port=free_port(), http=PROTOCOL_PATH,
                                           lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
            time.sleep(0.05)
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def eventually(check: Callable[[], object], expected: object, seconds: float = 5) -> object:
    deadline = time.monotonic() + seconds
    while (seen := check()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


def test_the_per_peer_count_follows_connections_and_returns_to_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_CONNECTIONS_PER_CLIENT", "5")
    get_settings.cache_clear()
    try:
        with guarded_server_in_thread() as server, ExitStack() as stack:
            counts = open_by_peer(server.server_state)

            def connect(peer: str) -> socket.socket:
                connection = stack.enter_context(socket.socket())
                connection.bind((peer, 0))
                connection.connect(("127.0.0.1", server.config.port))
                return connection

            flood = [connect("127.0.0.2") for _ in range(8)]  # 3 over the cap of 5: closed, and uncounted again
            others = [connect("127.0.0.3") for _ in range(2)]
            assert eventually(lambda: dict(counts), {"127.0.0.2": 5, "127.0.0.3": 2}) == {"127.0.0.2": 5, "127.0.0.3": 2}
            assert [closed_within(connection, 0.5) is not None for connection in flood[5:]] == [True] * 3
            others[0].sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # answered: kept alive, still counted
            assert others[0].recv(4096).startswith(b"HTTP/1.1 200")
            assert eventually(lambda: dict(counts), {"127.0.0.2": 5, "127.0.0.3": 2}) == {"127.0.0.2": 5, "127.0.0.3": 2}
            for connection in [*flood[:5], *others]:
                connection.close()
            assert eventually(lambda: dict(counts), {}) == {}
            assert connect("127.0.0.2").sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None  # the peer may come back
            assert eventually(lambda: dict(counts), {"127.0.0.2": 1}) == {"127.0.0.2": 1}
    finally:
        get_settings.cache_clear()
