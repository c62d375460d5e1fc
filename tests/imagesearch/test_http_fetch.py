"""HTTP(S) image reads against a real loopback server: addresses checked at connect time, after every redirect,
within the size limit."""

from __future__ import annotations

import ipaddress

import pytest

from imagesearch.errors import ImageFetchError, ImageMissingError, ImageTooLargeError, InputRefusedError
from imagesearch.http_fetch import read_http
from imagesearch.input_policy import InputPolicy
from tests.security.hostile_server import serve

IMAGE = b"\x89PNG\r\n\x1a\n" + b"x" * 1000
LOOPBACK_ALLOWED = InputPolicy(schemes=frozenset({"http"}), allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
                               deadline_s=10.0)


def test_reads_redirects_and_limits() -> None:
    with serve(IMAGE) as port:
        base = f"http://127.0.0.1:{port}"
        assert read_http(f"{base}/ok.png", LOOPBACK_ALLOWED) == IMAGE
        assert read_http(f"{base}/redirect?to=/ok.png", LOOPBACK_ALLOWED) == IMAGE
        with pytest.raises(ImageTooLargeError):
            read_http(f"{base}/ok.png", LOOPBACK_ALLOWED, max_bytes=100)
        with pytest.raises(ImageTooLargeError):
            read_http(f"{base}/huge.png", LOOPBACK_ALLOWED, max_bytes=10**6)  # refused by its Content-Length
        with pytest.raises(ImageFetchError, match="redirect"):
            read_http(f"{base}/loop", LOOPBACK_ALLOWED)
        with pytest.raises(ImageMissingError):
            read_http(f"{base}/nothing-here.png", LOOPBACK_ALLOWED)


def test_loopback_is_refused_unless_its_network_is_allowed() -> None:
    with serve(IMAGE) as port, pytest.raises(InputRefusedError, match=r"127\.0\.0\.1"):
        read_http(f"http://127.0.0.1:{port}/ok.png", InputPolicy(schemes=frozenset({"http"})))
