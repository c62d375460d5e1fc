"""HTTP(S) downloads under the input policy: checked addresses, capped redirects, a deadline and a minimum rate.

Every connection goes through :class:`GuardedBackend`, which resolves the host itself, refuses it
unless every address is public, and connects to the address it checked (no second lookup to rebind).
Redirects are followed by hand, each target checked like the first URL. A watchdog shuts the socket
down at the deadline, so a server trickling bytes cannot hold a fetch past it; a body arriving slower
than ``min_bytes_per_s`` (after a grace second) is dropped early.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpcore

from imagesearch.errors import (
    ImageFetchError,
    ImageFetchTimeoutError,
    ImageFetchTooSlowError,
    ImageFetchUnavailableError,
    ImageMissingError,
    InputRefusedError,
)
from imagesearch.input_policy import InputPolicy
from imagesearch.uri import too_large

REDIRECTS = (301, 302, 303, 307, 308)
RETRY_LATER = (408, 429)  # and every 5xx: the server may answer later
RATE_GRACE_S = 1.0
HEADERS = [(b"User-Agent", b"imagesearch-pipeline"), (b"Accept", b"image/*, */*;q=0.5")]


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to checked public addresses; :meth:`abort` cuts every socket it opened."""

    def __init__(self, policy: InputPolicy) -> None:
        self.policy = policy
        self.aborted = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        address = self.policy.public_addresses(host, port)[0]
        stream = super().connect_tcp(address, port, timeout, local_address, socket_options)
        with self._lock:
            self._sockets.append(stream.get_extra_info("socket"))
            if self.aborted:
                self._shutdown()
        return stream

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            self._shutdown()

    def _shutdown(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        return ssl.create_default_context()


# Characters left as they are when a path or query is percent-encoded: RFC 3986's reserved and unreserved ones, and %.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def ascii_url(url: str) -> str:
    """``url`` as sent on the wire: an internationalised host name in IDNA form (``bücher.example`` ->
    ``xn--bcher-kva.example``), every other non-ASCII character percent-encoded as UTF-8 (``café.jpg`` ->
    ``caf%C3%A9.jpg``); an ASCII URL is returned unchanged. A host that has no IDNA form is refused."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InputRefusedError(f"host {host!r} is not a valid internationalised domain name ({exc})") from None
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username is not None or parts.password is not None:
        raise InputRefusedError("an image URL with user information is not fetched")
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_PATH_SAFE), quote(parts.query, safe=_QUERY_SAFE), ""))


def read_http(url: str, policy: InputPolicy, max_bytes: int | None = None) -> bytes:
    """The body at ``url`` (in its ASCII form: :func:`ascii_url`); typed errors for refused, missing, too large,
    too slow or failed fetches."""
    began = time.monotonic()
    url = ascii_url(url)
    backend = GuardedBackend(policy)
    watchdog = threading.Timer(policy.deadline_s, backend.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        with httpcore.ConnectionPool(network_backend=backend, ssl_context=_ssl_context()) as pool:
            for _ in range(policy.max_redirects + 1):
                policy.check_url(url)
                remaining = policy.deadline_s - (time.monotonic() - began)
                if remaining <= 0:
                    raise _timeout(url, policy)
                timeouts = {"connect": remaining, "read": remaining, "write": remaining, "pool": remaining}
                with pool.stream("GET", url, headers=HEADERS, extensions={"timeout": timeouts}) as response:
                    if response.status in REDIRECTS:
                        url = _redirect_target(url, response)
                        continue
                    return _body(url, response, policy, max_bytes)
            raise InputRefusedError(f"more than {policy.max_redirects} redirects")
    except httpcore.TimeoutException:
        raise _timeout(url, policy) from None
    except httpcore.UnsupportedProtocol as exc:
        raise ImageFetchError(f"cannot fetch {url}: {exc}") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        if backend.aborted:
            raise _timeout(url, policy) from None
        raise ImageFetchUnavailableError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None
    finally:
        watchdog.cancel()


def _timeout(url: str, policy: InputPolicy) -> ImageFetchTimeoutError:
    return ImageFetchTimeoutError(f"no complete answer within the {policy.deadline_s:g}s deadline from {url}")


def _header(response: httpcore.Response, name: bytes) -> str:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _redirect_target(url: str, response: httpcore.Response) -> str:
    location = _header(response, b"location")
    if not location:
        raise ImageFetchError(f"HTTP {response.status} redirect without a Location from {url}")
    target = ascii_url(urljoin(url, location))
    if urlsplit(target).scheme.lower() not in ("http", "https"):
        raise InputRefusedError(f"redirect from {url} to a non-HTTP location")
    return target


def _body(url: str, response: httpcore.Response, policy: InputPolicy, max_bytes: int | None) -> bytes:
    if response.status == 404:
        raise ImageMissingError(f"HTTP 404 for {url}")
    if response.status >= 500 or response.status in RETRY_LATER:
        raise ImageFetchUnavailableError(f"HTTP {response.status} for {url}")
    if response.status >= 400:
        raise ImageFetchError(f"HTTP {response.status} for {url}")
    declared = _header(response, b"content-length")
    if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    received = 0
    first_byte = 0.0
    for chunk in response.iter_stream():
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise too_large(received, max_bytes)
        chunks.append(chunk)
        now = time.monotonic()
        first_byte = first_byte or now
        streaming = now - first_byte
        if streaming > RATE_GRACE_S and received < policy.min_bytes_per_s * streaming:
            raise ImageFetchTooSlowError(
                f"{url} sent {received:,} bytes in {streaming:.1f}s, under the {policy.min_bytes_per_s:,.0f} bytes/s minimum"
            )
    return b"".join(chunks)
