"""The one preprocessing function: every awkward image mode works; bad bytes get typed errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagesearch.errors import ImageTooLargeError, ImageTooSmallError, NotAnImageError, TruncatedImageError
from imagesearch.preprocess import PreprocessConfig, decode_image, preprocess_bytes
from tests.conftest import jpeg_bytes, photo, png_bytes


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def awkward_images() -> dict[str, bytes]:
    base = photo("coffee").resize((120, 80))
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    return {
        "rgb-jpeg": jpeg_bytes(base),
        "rgba-png": encoded(rgba, "PNG"),
        "la-png": encoded(rgba.convert("LA"), "PNG"),
        "palette-transparency-png": encoded(palette, "PNG"),
        "greyscale-png": encoded(base.convert("L"), "PNG"),
        "1-bit-png": encoded(base.convert("1"), "PNG"),
        "16-bit-png": encoded(base.convert("L").point(lambda v: v * 256, "I").convert("I;16"), "PNG"),
        "cmyk-jpeg": encoded(base.convert("CMYK"), "JPEG"),
        "cmyk-tiff": encoded(base.convert("CMYK"), "TIFF"),
        "gif": encoded(palette, "GIF"),
        "webp": encoded(base, "WEBP"),
        "bmp": encoded(base, "BMP"),
    }


@pytest.mark.parametrize("name", sorted(awkward_images()))
def test_awkward_modes_become_normalised_rgb(name: str) -> None:
    array = preprocess_bytes(awkward_images()[name])
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    assert np.isfinite(array).all()


def test_transparency_is_flattened_on_white() -> None:
    clear = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert decode_image(png_bytes(clear)).getpixel((10, 10)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    tall = Image.new("RGB", (40, 80), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(encoded(tall, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (80, 40)


def test_pad_keeps_the_whole_picture_and_crop_fills_the_frame() -> None:
    wide = Image.new("RGB", (400, 100), "blue")
    padded = preprocess_bytes(png_bytes(wide), PreprocessConfig(fit="pad"))
    cropped = preprocess_bytes(png_bytes(wide), PreprocessConfig(fit="crop"))
    assert padded[:, 0, 0].tolist() != padded[:, 112, 112].tolist()  # white band above the blue strip
    assert np.allclose(cropped[:, 0, 0], cropped[:, 112, 112])


def test_not_an_image() -> None:
    with pytest.raises(NotAnImageError):
        decode_image(b"%PDF-1.4 definitely not a picture")


def test_truncated_image() -> None:
    data = jpeg_bytes(photo("astronaut"))
    with pytest.raises(TruncatedImageError):
        decode_image(data[: len(data) // 2])
    png = png_bytes(photo("astronaut"))
    with pytest.raises((TruncatedImageError, NotAnImageError)):
        decode_image(png[: len(png) // 2])


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = encoded(Image.new("L", (20_000, 20_000)), "PNG")  # tiny file, 400 Mpx
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageTooLargeError, match="pixel"):
        decode_image(bomb, PreprocessConfig(max_pixels=40_000_000))


def test_too_small() -> None:
    with pytest.raises(ImageTooSmallError):
        decode_image(png_bytes(Image.new("RGB", (8, 8))))
