"""A hostile corpus of query images, for tests/serving/test_hostile_corpus.py and bench/abuse.py.

It covers every format Pillow opens (``Image.OPEN``, iterated, not listed by hand):

- each format Pillow can also write, in every mode it writes (``MODES``); the accepted formats
  (imagesearch.preprocess.ACCEPTED_FORMATS) at the in-cap maximum size (just under the query pixel cap, and
  under the upload cap: smooth content, or a smaller side for formats that do not compress), the others small
  (they are refused from their first bytes, whatever their size);
- the formats Pillow opens but cannot write, as a crafted header that Pillow's own plugin recognises;
- containers that embed other codecs (ICO, CUR and ICNS holding PNG, TIFF with JPEG, deflate, LZW or PackBits
  strips, a JPEG-in-TIFF of many pages, MPO, animated GIF, WebP and PNG);
- decompression bombs (tiny files declaring huge sizes, and a 1-bit PNG of 64 Mpx);
- truncated and corrupted variants of each accepted sample.

``expected`` is the set of statuses the API documents for a sample: 200 for an accepted, in-cap image; 415
for a format that is not accepted (refused before it decodes); 422 for too large, too small or truncated;
a corrupted file may still decode (200) or be refused (415 or 422). Never a 5xx.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from imagesearch.preprocess import ACCEPTED_FORMATS
from tests.serving.hostile_inputs import (
    corrupt_png,
    encoded,
    gif_with_screen_size,
    ico_with_png,
    jpeg_with_header_size,
    png_bomb,
    png_with_header_size,
    truncated,
)

MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16",
         "I;16B", "I;16L", "F")
# Pillow's MPO writer writes a JPEG with a second picture: the JPEG plugin opens it, first frame only.
JPEG_FAMILY = {"MPO": "JPEG"}
DECODED = frozenset({200})
REFUSED = frozenset({415})
UNPROCESSABLE = frozenset({422})
CORRUPT = frozenset({200, 415, 422})


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    expected: frozenset[int]
    pillow_format: str  # the plugin the bytes are for ("" for no plugin at all)

    @property
    def decodes(self) -> bool:
        return self.expected == DECODED


def gradient(mode: str, side: int) -> Image.Image:
    """A smooth side x side picture in ``mode`` (compresses well, so big images stay under the upload cap)."""
    ramp = np.add.outer(np.arange(side, dtype=np.uint32), np.arange(side, dtype=np.uint32))
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = (ramp * 65535 // max(2 * side - 2, 1)).astype(np.uint16)
        image = Image.fromarray(values.astype(np.float32) / 65535 if mode == "F" else values.astype(np.int32))
        return image if mode in ("I", "F") else Image.fromarray(values).convert(mode)
    grey = (ramp * 255 // max(2 * side - 2, 1)).astype(np.uint8)
    rgb = Image.merge("RGB", [Image.fromarray(grey), Image.fromarray(grey[::-1].copy()), Image.fromarray(grey.T.copy())])
    if mode in ("P", "PA"):
        palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        return palette if mode == "P" else palette.convert("PA")
    image = rgb.convert(mode)
    if mode in ("LA", "La", "RGBA", "RGBa"):
        image.putalpha(Image.fromarray(grey[:, ::-1].copy()))
    return image


def written(mode: str, side: int, fmt: str, **options: object) -> bytes | None:
    """A gradient in ``mode`` as ``fmt``, or None where Pillow does not make or write that mode (or that format,
    without a handler)."""
    try:
        return encoded(gradient(mode, side), fmt, **options)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SyntaxError):
        return None


def largest_written(mode: str, fmt: str, max_pixels: int, max_bytes: int, **options: object) -> bytes | None:
    """``mode`` in ``fmt`` at the largest square side under both the pixel cap and the upload cap."""
    side = math.isqrt(max_pixels - 1)
    for _ in range(4):
        data = written(mode, side, fmt, **options)
        if data is None or len(data) <= max_bytes:
            return data
        side = int(side * math.sqrt(max_bytes / len(data)) * 0.97)
    return None


def accepted(fmt: str) -> bool:
    return JPEG_FAMILY.get(fmt, fmt) in ACCEPTED_FORMATS


def written_formats() -> list[str]:
    Image.init()
    return sorted(set(Image.SAVE) & (set(Image.OPEN) | set(JPEG_FAMILY)))


def opened_as(data: bytes) -> tuple[str, str]:
    with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
        return str(image.format), image.mode


def every_writable(max_pixels: int, max_bytes: int, refused_side: int = 64, accepted_side: int | None = None,
                   distinct: bool = False) -> Iterator[Sample]:
    """Every format Pillow writes, in every mode it writes. ``accepted_side`` None: accepted formats at the in-cap
    maximum size; else that side. ``distinct``: of the accepted modes that the decoder opens alike (a WebP written
    from LA, RGBA or PA opens as RGBA), only the first."""
    seen: set[tuple[str, str]] = set()
    for fmt in written_formats():
        for mode in MODES:
            if not accepted(fmt):
                data = written(mode, refused_side, fmt)
                if data is not None:
                    yield Sample(f"{fmt} {mode}", data, REFUSED, fmt)
                continue
            if distinct:
                small = written(mode, 64, fmt)
                if small is None or opened_as(small) in seen:
                    continue
                seen.add(opened_as(small))
            data = (largest_written(mode, fmt, max_pixels, max_bytes) if accepted_side is None
                    else written(mode, accepted_side, fmt))
            if data is not None:
                yield Sample(f"{fmt} {mode}", data, DECODED, fmt)


def _fits(header: bytes, size: int = 2880) -> bytes:
    return header.ljust(size, b" ")


def crafted_headers() -> dict[str, bytes]:
    """Bytes Pillow's plugin for each open-only format (and each writable one it writes nothing for) recognises."""
    pcx = encoded(gradient("L", 32), "PCX")
    fits = b"".join(card.ljust(80).encode() for card in (
        "SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    2",
        "NAXIS1  =                   32", "NAXIS2  =                   32", "END"))
    sun = struct.pack(">8I", 0x59A66A95, 32, 32, 8, 32 * 32, 1, 0, 0) + bytes(32 * 32)
    psd = (b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 32, 32, 8, 3) + struct.pack(">I", 0) * 3
           + struct.pack(">H", 0) + bytes(3 * 32 * 32))
    gbr = struct.pack(">IIIIII", 28 + 6, 2, 32, 32, 1, 0x47494D50) + struct.pack(">I", 0) + b"brush\0" + bytes(32 * 32)
    dib = encoded(gradient("RGB", 32), "BMP")[14:]  # a BMP without its file header, as icons and cursors hold them
    pixar = bytearray(1024 + 32 * 32 * 3)
    pixar[0:4], pixar[416:420], pixar[424:428] = b"\x80\xe8\x00\x00", struct.pack("<HH", 32, 32), struct.pack("<HH", 14, 2)
    iptc = b"".join(b"\x1c" + bytes(tag) + struct.pack(">H", len(value)) + value for tag, value in (
        ((3, 60), b"\x01\x00"), ((3, 20), b"\x00\x20"), ((3, 30), b"\x00\x20"), ((3, 120), b"\x01"), ((8, 10), b"")))
    wmf = (b"\xd7\xcd\xc6\x9a\0\0" + struct.pack("<hhhhH", 0, 0, 320, 240, 1440) + bytes(6) + b"\x01\x00\t\x00"
           + bytes(64))
    return {
        "CUR": struct.pack("<HHH", 0, 2, 1) + struct.pack("<BBBBHHII", 32, 32, 0, 0, 0, 0, len(dib), 22) + dib,
        "DCX": struct.pack("<II", 0x3ADE68B1, 12) + struct.pack("<I", 0) + pcx,
        "FITS": _fits(fits) + bytes(32 * 32),
        "SUN": sun,
        "PSD": psd,
        "GBR": gbr,
        "XPM": b'/* XPM */\nstatic char *x[] = {\n"2 2 1 1",\n"a c #ff0000",\n"aa",\n"aa"\n};\n',
        "MPEG": b"\x00\x00\x01\xb3" + struct.pack(">I", (320 << 20) | (240 << 8)) + bytes(64),
        "PCD": bytes(2048) + b"PCD_IPI" + bytes(4096),
        "PIXAR": bytes(pixar),
        "XVTHUMB": b"P7 332\n#XVVERSION:Version 2.0\n#END_OF_COMMENTS\n32 32 255\n" + bytes(32 * 32),
        "IMT": b"width 32\nheight 32\npixel n8\n\x0c" + bytes(32 * 32),
        "BUFR": b"BUFR" + bytes(64),
        "GRIB": b"GRIB\0\0\0\x01" + bytes(64),
        "HDF5": b"\x89HDF\r\n\x1a\n" + bytes(64),
        "WMF": wmf,
        "FLI": struct.pack("<IHHHHH", 128, 0xAF12, 1, 32, 32, 8) + bytes(128 - 14) + struct.pack("<IH", 16, 0xF1FA) + bytes(10),
        "FTEX": b"FTEX" + struct.pack("<iiiiii", 0, 32, 32, 1, 1, 1) + struct.pack("<iii", 0, 32 * 32 * 3, 0)
        + bytes(32 * 32 * 3),
        "MCIDAS": struct.pack(">24i", *([0, 4] + [0] * 6 + [32, 32, 1, 1, 1] + [0] * 11)) + bytes(32 * 32 + 256),
        "IPTC": iptc + bytes(32 * 32),
    }


def identified(data: bytes) -> str:
    """The format Pillow's own plugins (all of them) see in ``data``, or "" if none does."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format).upper()
    except Exception:
        return ""


def crafted() -> Iterator[Sample]:
    writable = {sample.pillow_format for sample in every_writable(10_000, 1 << 20, 16, 16)}
    for fmt, data in crafted_headers().items():
        if fmt not in writable:
            yield Sample(f"{fmt} (crafted header)", data, REFUSED, fmt)


def containers(max_pixels: int, max_bytes: int) -> Iterator[Sample]:
    yield Sample("ICO holding a 6000x6000 PNG", ico_with_png(6000), REFUSED, "ICO")
    ico = ico_with_png(6000)
    yield Sample("CUR holding a 6000x6000 PNG", ico[:2] + b"\x02\x00" + ico[4:], REFUSED, "CUR")
    icns = written("RGBA", 1024, "ICNS")
    if icns is not None:
        yield Sample("ICNS holding PNGs up to 1024 px", icns, REFUSED, "ICNS")
    for compression in ("jpeg", "tiff_deflate", "tiff_lzw", "packbits", "tiff_adobe_deflate"):
        data = largest_written("RGB", "TIFF", max_pixels, max_bytes, compression=compression)
        if data is not None:
            yield Sample(f"TIFF {compression}, in-cap maximum size", data, DECODED, "TIFF")
    pages = [gradient("RGB", 1000)] * 40
    yield Sample("TIFF jpeg, 40 pages (first decoded)", encoded(pages[0], "TIFF", compression="jpeg", save_all=True,
                                                                append_images=pages[1:]), DECODED, "TIFF")
    frames = [gradient("P", 2000).rotate(angle) for angle in range(0, 40, 4)]
    yield Sample("GIF, 10 frames of 2000x2000", encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
                 DECODED, "GIF")
    yield Sample("animated PNG, 10 frames of 2000x2000", encoded(frames[0].convert("RGBA"), "PNG", save_all=True,
                                                                 append_images=[f.convert("RGBA") for f in frames[1:]]),
                 DECODED, "PNG")
    yield Sample("animated WebP, 10 frames of 2000x2000", encoded(frames[0].convert("RGBA"), "WEBP", save_all=True,
                                                                  append_images=[f.convert("RGBA") for f in frames[1:]]),
                 DECODED, "WEBP")
    mpo = written("RGB", 3000, "MPO", save_all=True, append_images=[gradient("RGB", 3000)])
    if mpo is not None:
        yield Sample("MPO, two 3000x3000 JPEGs", mpo, DECODED, "MPO")


def tiff_with_size(width: int, height: int) -> bytes:
    """A small valid TIFF whose width and length tags are patched to claim width x height."""
    data = bytearray(encoded(gradient("L", 16), "TIFF"))
    for tag, value in ((256, width), (257, height)):
        entry = _tiff_entry(data, tag)
        data[entry + 2 : entry + 4] = struct.pack("<H", 4)  # LONG
        data[entry + 4 : entry + 8] = struct.pack("<I", 1)
        data[entry + 8 : entry + 12] = struct.pack("<I", value)
    return bytes(data)


def _tiff_entry(data: bytearray, tag: int) -> int:
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for index in range(count):
        entry = ifd + 2 + 12 * index
        if struct.unpack_from("<H", data, entry)[0] == tag:
            return entry
    raise ValueError(f"no TIFF tag {tag}")


def webp_with_size(width: int, height: int) -> bytes:
    """A small lossless WebP whose VP8L header is patched to claim width x height (at most 16384 a side)."""
    data = bytearray(encoded(gradient("RGB", 16), "WEBP", lossless=True))
    start = data.index(b"VP8L") + 9
    bits = (width - 1) | ((height - 1) << 14) | (int.from_bytes(data[start : start + 4], "little") & ~((1 << 28) - 1))
    data[start : start + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def bmp_with_size(width: int, height: int) -> bytes:
    data = bytearray(encoded(gradient("RGB", 16), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def bombs() -> Iterator[Sample]:
    yield Sample("PNG 1-bit 8000x8000 (a few KB)", png_bomb(), UNPROCESSABLE, "PNG")
    yield Sample("PNG declaring 65535x65535", png_with_header_size(65535, 65535), UNPROCESSABLE, "PNG")
    yield Sample("JPEG declaring 65000x65000", jpeg_with_header_size(65000, 65000), UNPROCESSABLE, "JPEG")
    yield Sample("GIF declaring 60000x60000", gif_with_screen_size(60000, 60000), UNPROCESSABLE, "GIF")
    yield Sample("WebP declaring 16384x16384", webp_with_size(16384, 16384), UNPROCESSABLE, "WEBP")
    yield Sample("BMP declaring 60000x60000", bmp_with_size(60000, 60000), UNPROCESSABLE, "BMP")
    yield Sample("TIFF declaring 65535x65535", tiff_with_size(65535, 65535), UNPROCESSABLE, "TIFF")
    yield Sample("PNG 4000x4000, last rows cut", corrupt_png(4000, 4000), UNPROCESSABLE, "PNG")


def damaged(samples: list[Sample]) -> Iterator[Sample]:
    """Each accepted sample cut in half, and with a run of its middle bytes flipped."""
    for sample in samples:
        if sample.decodes:
            yield Sample(f"{sample.name}, cut in half", truncated(sample.data), CORRUPT, sample.pillow_format)
            middle = bytearray(sample.data)
            centre = len(middle) // 2
            middle[centre : centre + 64] = bytes(255 - byte for byte in middle[centre : centre + 64])
            yield Sample(f"{sample.name}, 64 bytes flipped", bytes(middle), CORRUPT, sample.pillow_format)


def corpus(max_pixels: int, max_bytes: int, accepted_side: int | None = None, distinct: bool = False) -> list[Sample]:
    """The whole corpus. ``accepted_side`` None: accepted formats at the in-cap maximum size (slow to build: minutes;
    ``distinct`` makes it one sample per way the decoder opens them); a small side for quick runs (containers and
    bombs keep their sizes)."""
    writable = list(every_writable(max_pixels, max_bytes, accepted_side=accepted_side, distinct=distinct))
    builders: list[Callable[[], Iterator[Sample]]] = [crafted, lambda: containers(max_pixels, max_bytes), bombs]
    built = writable + [sample for build in builders for sample in build()]
    return built + list(damaged(built))
