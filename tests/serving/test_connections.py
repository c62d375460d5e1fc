"""serving/connections.py over real HTTP: idle, slow-header and flooding connections are cut off, probes answer."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.serving.conftest import start_server

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
