"""URI parsing without I/O: local paths, resolving a catalog's relative image URIs, gs:// parts."""

from __future__ import annotations

from pathlib import Path

from imagesearch import uri


def test_local_path() -> None:
    assert uri.local_path("/data/a.png") == Path("/data/a.png")
    assert uri.local_path("file:///data/a%20b.png") == Path("/data/a b.png")
    assert uri.local_path("gs://bucket/a.png") is None and uri.local_path("https://host/a.png") is None


def test_relative_uris_resolve_against_the_catalog() -> None:
    assert uri.resolve("images/a.png", "/data/catalog.csv") == "/data/images/a.png"
    assert uri.resolve("../x/../a.png", "file:///data/sub/catalog.csv") == "/data/a.png"  # lexically
    assert uri.resolve("images/a.png", "gs://bucket/cat/catalog.csv") == "gs://bucket/cat/images/a.png"
    assert uri.resolve("https://cdn/a.png", "/data/catalog.csv") == "https://cdn/a.png"
    assert uri.resolve("http://[::1", "/data/catalog.csv") == "http://[::1"  # malformed: refused later, per item


def test_gs_parts_and_the_size_error() -> None:
    assert uri.split_gs("gs://bucket/some/key.png") == ("bucket", "some/key.png")
    assert str(uri.too_large(2_000_000, 1_000_000)) == "2,000,000 bytes exceeds the 1,000,000-byte limit"
    assert uri.too_large(2, 1).reason == "too_large"
