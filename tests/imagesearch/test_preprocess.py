"""The one preprocessing function: every awkward image mode works; bad bytes get typed errors."""

from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from imagesearch.errors import ImageTooLargeError, ImageTooSmallError, NotAnImageError, TruncatedImageError
from imagesearch.preprocess import ACCEPTED_FORMATS, PreprocessConfig, decode_image, preprocess_bytes
from tests.conftest import jpeg_bytes, photo, png_bytes
from tests.serving import hostile_inputs as hostile

MIB = 1024 * 1024


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


def other_formats() -> dict[str, bytes]:
    """A small image in every format this Pillow can write and the API does not accept."""
    base = photo("coffee").resize((64, 64))
    written: dict[str, bytes] = {}
    for fmt in sorted(set(Image.SAVE) - set(ACCEPTED_FORMATS) - {"PDF", "EPS", "PALM", "XBM", "MPO"}):
        for mode in ("RGB", "RGBA", "L", "1"):
            try:
                written[fmt] = encoded(base.convert(mode), fmt)
                break
            except (OSError, ValueError, KeyError):
                continue
    return written


def test_there_are_other_formats_to_refuse() -> None:
    assert {"ICO", "JPEG2000", "TGA", "PPM"} <= set(other_formats())


@pytest.mark.parametrize("fmt", sorted(other_formats()))
def test_formats_the_api_does_not_document_are_refused(fmt: str) -> None:
    data = other_formats()[fmt]
    Image.open(io.BytesIO(data)).load()  # Pillow itself reads it
    with pytest.raises(NotAnImageError, match="accepted format"):
        decode_image(data)


def peak_rss_of_decoding(data: bytes, folder: Path) -> int:
    """Bytes the peak RSS of a fresh interpreter grows by while ``decode_image`` runs on ``data`` (VmHWM, which,
    unlike ru_maxrss, starts afresh at exec)."""
    path = folder / "input"
    path.write_bytes(data)
    script = (
        "import json, re, sys\n"
        "from imagesearch.preprocess import decode_image\n"
        "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = peak()\n"
        "try:\n    decode_image(data)\nexcept Exception as exc:\n    print(type(exc).__name__, file=sys.stderr)\n"
        "print(json.dumps(peak() - before))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_an_icon_holding_a_large_png_is_refused_without_decoding(tmp_path: Path) -> None:
    icon = hostile.ico_with_png(6000)
    assert Image.open(io.BytesIO(icon)).size == (6000, 6000)  # what an unrestricted open would decode: 137 MiB
    with pytest.raises(NotAnImageError, match="accepted format"):
        decode_image(icon)
    assert peak_rss_of_decoding(icon, tmp_path) < 8 * MIB
    assert peak_rss_of_decoding(png_bytes(Image.new("RGBA", (6000, 6000))), tmp_path) > 100 * MIB  # the measure works


def test_jpeg2000_is_refused() -> None:
    with pytest.raises(NotAnImageError, match="accepted format"):
        decode_image(hostile.jpeg2000())


def test_only_the_first_frame_of_an_animation_is_decoded() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    for fmt in ("GIF", "WEBP", "TIFF"):
        buffer = io.BytesIO()
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
        assert Image.open(buffer).n_frames == 3
        red, green, blue = decode_image(buffer.getvalue()).getpixel((16, 16))
        assert red > 200 and green < 60 and blue < 60, fmt


def test_failed_decodes_release_their_pixels_without_a_garbage_collection() -> None:
    """Each corrupt 16-Mpx PNG makes Pillow fill its 46 MiB image before the data turns out bad (the decoder before
    this held 730 MiB after twelve, until a full collection); twelve of
    them must not add up while the cyclic garbage collector is off."""
    corrupt = hostile.corrupt_png(4000, 4000)
    config = PreprocessConfig(max_pixels=16_000_000)
    process = psutil.Process()
    with pytest.raises(TruncatedImageError):
        decode_image(corrupt, config)  # the allocator's first growth is not a leak
    gc.collect()
    gc.disable()
    try:
        before = process.memory_info().rss
        errors = []
        for _ in range(12):
            try:
                decode_image(corrupt, config)
            except TruncatedImageError as error:
                errors.append(error)  # even errors kept by the caller hold no pixels
        grown = process.memory_info().rss - before
    finally:
        gc.enable()
    assert len(errors) == 12 and all(error.__context__ is None and error.__cause__ is None for error in errors)
    assert grown < 100 * MIB, f"RSS grew by {grown / MIB:.0f} MiB over 12 failed decodes"
