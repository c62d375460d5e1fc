"""One memory budget for what a search's input costs: its body while it is read, and its decode.

A search reserves, before a byte of its body is read, ``BODY_PEAK_COPIES`` x the body's length (its
``Content-Length``; the body cap when it is chunked), and shrinks that to the one copy it keeps once read
(serving/uploads.py). Before decoding it reserves the decode's cost, ``DECODE_BYTES_PER_PIXEL`` per pixel the
decoder will allocate for (the header's size, after JPEG's reduced-scale draft) plus the encoded bytes once more.
All of it is returned when the request ends, however it ends. A reservation that does not fit waits up to
``IMAGESEARCH_BODY_READ_TIMEOUT_S`` (then the body has as long again to arrive), then gets 503 + Retry-After.
Bodies share what is left of the budget once one worst-case decode is set aside, and one client (peer address)
may hold at most ``IMAGESEARCH_CLIENT_SLOT_SHARE`` of that, so slow uploads from one client cannot take the
memory every other client needs. A body, or a decode, larger than its pool is granted when no other one is
reserved: one search at a time is always served.

Body copies, ``PYTHONPATH=. .venv/bin/python bench/body_copies.py`` (10 MiB, tracemalloc, 64 KiB messages):

| body | peak copies while read | copies held while decoding |
|---|---|---|
| raw ``image/*`` (Litestar's ``Request.body``: the chunks, then their join) | 2.09 | 1.09 |
| multipart, parsed as it streams in (the part's bytearray, then its bytes) | 2.11 | 1.00 |

(Before: multipart parsed from the whole body, 3.00 peak and 2.00 held.)

Decoding: ``PYTHONPATH=. .venv/bin/python bench/decode_cost.py`` decodes every accepted sample of the hostile
corpus (tests/serving/hostile_corpus.py: each accepted format in each mode Pillow writes, 2000x2000; TIFF
compressions and JPEG-in-TIFF at the in-cap maximum; animations, MPO) in a fresh interpreter, VmHWM, Pillow 13.0.
Peak bytes per pixel the decoder allocates for, worst first: WebP RGBA 20.1 (92 % of its reservation), WebP RGB
16.2, JPEG after its draft 12.2-13.4, PNG and TIFF LA 13.1, TIFF I and F 13.8, 16-bit PNG and TIFF 11.1-11.9,
palette images 10.0, RGBA PNG and TIFF 9.0, CMYK, LAB and YCbCr TIFF 8.0, 1-bit and L 5.0, RGB 4.3-4.5.
Only imagesearch.preprocess.ACCEPTED_FORMATS decode; every other format is refused before it decodes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from serving.admission import announced_length, peer
from serving.errors import ApiError, OverloadedError, RetryLaterError, TooManyRequestsError, error_response
from serving.metrics import Metrics

DECODE_BYTES_PER_PIXEL = 22  # WebP RGBA, the worst in the table above
BODY_PEAK_COPIES = 2.25  # the measured 2.1, and the bytearray's over-allocation while the part grows
BODY_HELD_COPIES = 1
MIB = 1024 * 1024
RESERVES_MEMORY = "reserves_memory"  # route opt: the handler reads a query body under the budget
STATE_KEY = "query_memory"


def decode_bytes(pixels: int, encoded_bytes: int) -> int:
    """What decoding an image of ``pixels`` (as the decoder will allocate them) may take at most."""
    return pixels * DECODE_BYTES_PER_PIXEL + encoded_bytes


def body_bytes(length: int) -> int:
    """What reading a body of ``length`` bytes may take at most."""
    return int(length * BODY_PEAK_COPIES)


class MemoryBudget:
    """Bytes reserved by searches in flight against ``total``; only the event loop touches it.

    Bodies may hold at most ``total - worst_decode`` between them, so one decode of the worst case always fits
    beside them: a search holding its body while it waits to decode waits only on decodes, which never wait on
    anything, and no mix of requests can hold the budget while each waits for the others."""

    def __init__(self, total: int, worst_decode: int, client_share: float, retry_after_s: int, metrics: Metrics,
                 wait_s: float) -> None:
        self.total = total
        self.body_pool = max(total - worst_decode, 0)
        self.client_limit = int(self.body_pool * client_share)
        self.retry_after_s = retry_after_s
        self.wait_s = wait_s
        self.metrics = metrics
        self.bodies = 0
        self.decodes = 0
        self.peak = 0
        self.bodies_by_client: Counter[str] = Counter()
        self._waiters: set[asyncio.Future[None]] = set()
        metrics.memory_budget.set(total)

    @property
    def reserved(self) -> int:
        return self.bodies + self.decodes

    def reservation(self, client: str = "") -> Reservation:
        return Reservation(self, client)

    def _body_fits(self, nbytes: int, client: str) -> bool:
        """Within the bodies' pool and the whole budget (or nothing else reserved at all), and within the client's
        share of the pool (or its only body)."""
        if self.reserved and (self.bodies + nbytes > self.body_pool or self.reserved + nbytes > self.total):
            return False
        held = self.bodies_by_client[client]
        return not held or held + nbytes <= self.client_limit

    def _decode_fits(self, nbytes: int) -> bool:
        return not self.decodes or self.reserved + nbytes <= self.total

    async def take_body(self, nbytes: int, client: str) -> None:
        await self._wait_until(lambda: self._body_fits(nbytes, client), lambda: self._body_refusal(nbytes, client))
        self.bodies += nbytes
        self.bodies_by_client[client] += nbytes
        self._changed(grew=True)

    def _body_refusal(self, nbytes: int, client: str) -> RetryLaterError:
        """429 when only the client's share keeps this body out (the pool has room for it), else 503."""
        pool_has_room = self.bodies + nbytes <= self.body_pool and self.reserved + nbytes <= self.total
        if pool_has_room and not self._body_fits(nbytes, client):
            return TooManyRequestsError(f"this client's search bodies already hold its share of the memory for queries "
                                        f"({self.client_limit / MIB:,.0f} MiB); retry shortly", self.retry_after_s)
        return self._overloaded()

    def _overloaded(self) -> OverloadedError:
        return OverloadedError(f"the memory for queries ({self.total / MIB:,.0f} MiB) is taken by other searches; "
                               "retry shortly", self.retry_after_s)

    async def take_decode(self, nbytes: int) -> None:
        await self._wait_until(lambda: self._decode_fits(nbytes), self._overloaded)
        self.decodes += nbytes
        self._changed(grew=True)

    def give_back_body(self, nbytes: int, client: str) -> None:
        if nbytes:
            self.bodies -= nbytes
            self.bodies_by_client[client] -= nbytes
            if not self.bodies_by_client[client]:
                del self.bodies_by_client[client]
            self._changed(grew=False)

    def give_back_decode(self, nbytes: int) -> None:
        if nbytes:
            self.decodes -= nbytes
            self._changed(grew=False)

    async def _wait_until(self, fits: Callable[[], bool], refusal: Callable[[], RetryLaterError]) -> None:
        """Return once ``fits()``, waiting up to ``wait_s``; else raise ``refusal()``."""
        if fits():
            return
        self.metrics.memory_waits.inc()
        deadline = time.monotonic() + self.wait_s
        while not fits():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.metrics.rejected.inc()
                raise refusal()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(waiter)

    def _changed(self, grew: bool) -> None:
        self.metrics.memory_reserved.set(self.reserved)
        if grew:
            self.peak = max(self.peak, self.reserved)
            self.metrics.memory_reserved_peak.set(self.peak)
            return
        for waiter in self._waiters:  # each checks again whether it fits now
            if not waiter.done():
                waiter.set_result(None)


class Reservation:
    """One request's share of a :class:`MemoryBudget`: its body part and its decode part."""

    def __init__(self, budget: MemoryBudget, client: str) -> None:
        self.budget = budget
        self.client = client
        self.body = 0
        self.decode = 0

    async def reserve_body(self, nbytes: int) -> None:
        await self.budget.take_body(nbytes, self.client)
        self.body += nbytes

    def shrink_body(self, nbytes: int) -> None:
        """Keep at most ``nbytes`` of the body part (what stays in memory once the body is read)."""
        freed = max(self.body - nbytes, 0)
        self.body -= freed
        self.budget.give_back_body(freed, self.client)

    async def reserve_decode(self, nbytes: int) -> None:
        await self.budget.take_decode(nbytes)
        self.decode += nbytes

    def release_decode(self) -> None:
        freed, self.decode = self.decode, 0
        self.budget.give_back_decode(freed)

    def release(self) -> None:
        self.release_decode()
        self.shrink_body(0)


def reservation_of(request: Request[Any, Any, Any]) -> Reservation | None:
    """The reservation :class:`QueryMemoryMiddleware` made for this request, if its route reserves memory."""
    return request.scope.get("state", {}).get(STATE_KEY)


class QueryMemoryMiddleware(ASGIMiddleware):
    """Reserves a body's memory before it is read (after admission), and returns everything the request reserved
    when it ends: answered, refused, failed or disconnected."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, budget: MemoryBudget, max_body_bytes: int) -> None:
        self.budget = budget
        self.max_body_bytes = max_body_bytes

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:  # type: ignore[override]
        return not scope["route_handler"].opt.get(RESERVES_MEMORY, False)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        length = announced_length(scope)
        reservation = self.budget.reservation(peer(scope))
        try:
            try:
                # Over the cap is 413 (AdmissionMiddleware); without a length (chunked) the cap is what may come.
                await reservation.reserve_body(body_bytes(self.max_body_bytes if length is None
                                                          else min(max(length, 0), self.max_body_bytes)))
            except ApiError as exc:
                response = error_response(exc.status, exc.error, exc.detail, exc.headers)
                await response.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
                return
            scope.setdefault("state", {})[STATE_KEY] = reservation  # type: ignore[typeddict-unknown-key]
            await next_app(scope, receive, send)
        finally:
            reservation.release()
