"""Admission control for the expensive routes, before a byte of their body is read.

Handlers opt in with ``opt={ADMITTED: True}``. For those, :class:`AdmissionMiddleware`

1. refuses a body whose announced ``Content-Length`` is over the cap (413, nothing read);
2. takes one of ``limit`` slots, or answers 503 + ``Retry-After`` at once (a slot covers the whole request:
   body, decode, embedding, search); one client (its peer address) holds at most ``per_client`` of them, so a
   client that stalls its uploads cannot take the slots every other client needs;
3. gives the body ``body_timeout_s`` from when it is first read to arrive in full (408 after), so a client that trickles
   or stalls its upload cannot hold a slot, or the server, for longer than that.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import (
    ApiError,
    BodyTimeoutError,
    ClientDisconnectedError,
    OverloadedError,
    PayloadTooLargeError,
    TooManyRequestsError,
    error_response,
)
from serving.metrics import Metrics

ADMITTED = "admitted"


class Admission:
    """At most ``limit`` admitted requests at once; the rest are refused, not queued."""

    def __init__(self, limit: int, retry_after_s: int, metrics: Metrics, per_client: int | None = None) -> None:
        self.limit = limit
        self.per_client = min(per_client or limit, limit)
        self.retry_after_s = retry_after_s
        self.metrics = metrics
        self.in_flight = 0  # only the event loop touches these
        self.by_client: Counter[str] = Counter()

    def acquire(self, client: str = "") -> None:
        if self.in_flight >= self.limit:
            self.metrics.rejected.inc()
            raise OverloadedError(f"{self.in_flight} requests are already being served; retry shortly", self.retry_after_s)
        if self.by_client[client] >= self.per_client:
            self.metrics.rejected.inc()
            raise TooManyRequestsError(f"this client already has {self.per_client} requests being served; retry "
                                       "shortly", self.retry_after_s)
        self.in_flight += 1
        self.by_client[client] += 1
        self.metrics.admitted.inc()

    def release(self, client: str = "") -> None:
        self.in_flight -= 1
        self.by_client[client] -= 1
        if not self.by_client[client]:
            del self.by_client[client]
        self.metrics.admitted.dec()


def client_slots(limit: int, share: float) -> int:
    """The slots one client may hold: ``share`` of ``limit``, at least one."""
    return max(1, int(limit * share))


def peer(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def announced_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def receive_within(receive: Receive, timeout_s: float) -> Receive:
    """``receive`` that raises 408 if the whole body has not arrived ``timeout_s`` after its first call (after the
    request's memory reservation, serving/memory_budget.py: time the server waits is not the client's)."""
    deadline: float | None = None
    body_done = False

    async def receive_body_in_time() -> Message:
        nonlocal body_done, deadline
        if body_done:
            return await receive()
        if deadline is None:
            deadline = time.monotonic() + timeout_s
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise BodyTimeoutError(f"the request body did not arrive within {timeout_s:g} s") from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError("the client disconnected before sending the whole body")
        body_done = not message.get("more_body", False)
        return message

    return receive_body_in_time


class AdmissionMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, admission: Admission, max_body_bytes: int, body_timeout_s: float) -> None:
        self.admission = admission
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:  # type: ignore[override]
        return not scope["route_handler"].opt.get(ADMITTED, False)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        try:
            length = announced_length(scope)
            if length is not None and length > self.max_body_bytes:
                raise PayloadTooLargeError(f"the body ({length:,} bytes) is larger than the {self.max_body_bytes:,}-byte limit")
            client = peer(scope)
            self.admission.acquire(client)
        except ApiError as exc:
            # Answered here, inside the metrics middleware, so refusals are counted with their status.
            response = error_response(exc.status, exc.error, exc.detail, exc.headers)
            await response.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
            return
        try:
            await next_app(scope, receive_within(receive, self.body_timeout_s), send)
        finally:
            self.admission.release(client)
