"""Image media types from the bytes: raster formats only, whatever the file is called."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from serving.image_types import image_file_type, sniff_image_type


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                                                 ("TIFF", "image/tiff"), ("BMP", "image/bmp"), ("WEBP", "image/webp")])
def test_real_files_of_each_format(tmp_path: Path, fmt: str, media_type: str) -> None:
    path = tmp_path / "picture.txt"  # the name says nothing
    Image.new("RGB", (8, 8), "red").save(path, fmt)
    assert image_file_type(path) == media_type


def test_what_is_not_a_raster_image() -> None:
    for head in (b"<svg xmlns=", b"<!DOCTYPE html>", b"RIFF\x00\x00\x00\x00WAVE", b""):
        assert sniff_image_type(head) is None
