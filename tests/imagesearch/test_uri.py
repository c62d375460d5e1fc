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


def test_userinfo_is_removed_from_every_url_in_a_text() -> None:
    assert uri.redact_userinfo("https://s3cr3t@github.com/acme/gitops.git") == "https://github.com/acme/gitops.git"
    assert uri.redact_userinfo("smtp://alerts:pa@ss@mail:25") == "smtp://mail:25"  # up to the host's last @
    text = "fatal: could not read Password for 'http://tok@127.0.0.1:8080': also https://u:p@h/x and http://h/a@b"
    assert uri.redact_userinfo(text) == "fatal: could not read Password for 'http://127.0.0.1:8080': also https://h/x and http://h/a@b"
    for unchanged in ("git@github.com:acme/gitops.git", "/srv/a@b/gitops.git", "file:///a@b/c", "https://h/x?user=a@b"):
        assert uri.redact_userinfo(unchanged) == unchanged


def test_userinfo_is_split_off_and_decoded() -> None:
    assert uri.split_userinfo("https://tok@github.com/a.git") == ("https://github.com/a.git", "tok", None)
    assert uri.split_userinfo("https://bot:p%40ss%3Aword@h:8443/a.git") == ("https://h:8443/a.git", "bot", "p@ss:word")
    assert uri.split_userinfo("https://bot:@h/a.git") == ("https://h/a.git", "bot", "")
    assert uri.split_userinfo("/srv/gitops.git") == ("/srv/gitops.git", None, None)
