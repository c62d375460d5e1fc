"""Reading what a URI points to, only as the input policy allows: local files, gs:// (emulator), http(s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagesearch.errors import ImageFetchError, ImageMissingError, ImageTooLargeError, InputRefusedError
from imagesearch.gcs import gcs_client
from imagesearch.input_policy import InputPolicy
from imagesearch.uri_reader import read_bytes


def test_local_files_under_the_allowed_roots_only(tmp_path: Path) -> None:
    allowed = tmp_path / "images"
    allowed.mkdir()
    (allowed / "a.png").write_bytes(b"x" * 100)
    (tmp_path / "secret.txt").write_text("no")
    os.symlink(tmp_path / "secret.txt", allowed / "link.png")
    policy = InputPolicy(local_roots=(allowed,))
    assert read_bytes(str(allowed / "a.png"), policy) == b"x" * 100
    assert read_bytes((allowed / "a.png").as_uri(), policy, max_bytes=100) == b"x" * 100
    with pytest.raises(ImageTooLargeError, match="100 bytes exceeds the 99-byte limit"):
        read_bytes(str(allowed / "a.png"), policy, max_bytes=99)
    with pytest.raises(ImageMissingError):
        read_bytes(str(allowed / "gone.png"), policy)
    with pytest.raises(ImageFetchError, match="not a regular file"):
        read_bytes(str(allowed), policy)
    for outside in (str(tmp_path / "secret.txt"), str(allowed / "link.png"), str(allowed / ".." / "secret.txt")):
        with pytest.raises(InputRefusedError):
            read_bytes(outside, policy)


def test_schemes_the_policy_does_not_name_are_refused(tmp_path: Path) -> None:
    policy = InputPolicy(schemes=frozenset({"file"}), local_roots=(tmp_path,))
    for uri in ("gs://bucket/a.png", "https://example.com/a.png", "ftp://example.com/a.png"):
        with pytest.raises(InputRefusedError, match="is not allowed"):
            read_bytes(uri, policy)
    with pytest.raises(InputRefusedError, match="malformed URI"):
        read_bytes("https://[::1/a.png", InputPolicy())


def test_gs_objects_in_allowed_buckets(gcs_bucket: str) -> None:
    bucket = gcs_bucket.removeprefix("gs://")
    gcs_client().bucket(bucket).blob("img/a.png").upload_from_string(b"picture")
    policy = InputPolicy(gs_prefixes=((bucket, "img/"),))
    assert read_bytes(f"{gcs_bucket}/img/a.png", policy) == b"picture"
    with pytest.raises(ImageTooLargeError):
        read_bytes(f"{gcs_bucket}/img/a.png", policy, max_bytes=3)
    with pytest.raises(ImageMissingError):
        read_bytes(f"{gcs_bucket}/img/none.png", policy)
    with pytest.raises(InputRefusedError, match="not in an allowed bucket"):
        read_bytes(f"{gcs_bucket}/other/a.png", policy)
