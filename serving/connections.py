"""uvicorn's HTTP protocol with the connection limits it lacks: a deadline for request headers, and caps per client.

uvicorn closes a kept-alive connection that stays silent (``timeout_keep_alive``) but never one that has sent
nothing since it opened, nor one that trickles its headers a byte at a time; and its ``limit_concurrency``
answers 503 to *every* request, probes included, once enough connections are open. This protocol instead

- gives every request ``header_read_timeout_s`` from the moment the connection waits for it (opened, or the
  previous response sent) to deliver its complete headers, and closes the connection after that;
- closes a new connection at once when its peer address already holds ``max_connections_per_client``
  connections, or the server ``max_connections``: the flood loses its own connections, not everyone's requests.
  At once, not after holding it unread to slow the client down: a held connection would keep its file
  descriptor and count against ``max_connections``, so one client reconnecting in a loop could fill the worker.
  The per-peer counts are kept as connections open and close, so a reconnect storm costs O(1) per accept.

The peer is the TCP peer address, never a forwarded header. uvicorn loads the class by its import path in
each worker, so the limits come from the settings (environment) there.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from typing import Any
from weakref import WeakKeyDictionary

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from imagesearch.settings import get_settings

PROTOCOL_PATH = "serving.connections:GuardedHttpToolsProtocol"
# Open connections per peer address, per server (a worker runs one): counted in connection_made and connection_lost,
# so checking a newcomer costs O(1), not a scan of every open connection, during a reconnect storm.
_OPEN_BY_PEER: WeakKeyDictionary[ServerState, Counter[str]] = WeakKeyDictionary()


def open_by_peer(server_state: ServerState) -> Counter[str]:
    """The open connections of each peer address on the server that ``server_state`` belongs to."""
    return _OPEN_BY_PEER.setdefault(server_state, Counter())


def raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor: the soft limit (often 1,024) must not be what refuses them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = get_settings().serving
        self.header_read_timeout_s = limits.header_read_timeout_s
        self.max_connections = limits.max_connections
        self.max_connections_per_client = limits.max_connections_per_client
        self.header_deadline: asyncio.TimerHandle | None = None
        self.open_by_peer = open_by_peer(self.server_state)
        self.peer: str | None = None  # set while this connection is counted in open_by_peer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = self.client[0] if self.client else ""
        self.open_by_peer[self.peer] += 1
        if len(self.connections) > self.max_connections or self.open_by_peer[self.peer] > self.max_connections_per_client:
            transport.close()
            return
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self.header_deadline = self.loop.call_later(self.header_read_timeout_s, self._headers_too_late)

    def _cancel_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_late(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle, waiting for the next request's headers
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        if self.peer is not None:
            self.open_by_peer[self.peer] -= 1
            if not self.open_by_peer[self.peer]:
                del self.open_by_peer[self.peer]
            self.peer = None
        super().connection_lost(exc)
