"""Hostile query images and a raw HTTP client for the bad-input suite and bench/abuse.py."""

from __future__ import annotations

import http.client
import io
import json
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests.conftest import jpeg_bytes, photo, png_bytes

BOUNDARY = "hostile-boundary-1234"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def query_photo(side: int = 160) -> Image.Image:
    return photo("astronaut").resize((side, side))


def png_photo() -> bytes:
    return png_bytes(query_photo())


def noise_png(max_bytes: int) -> bytes:
    """Incompressible RGB noise as a PNG just under ``max_bytes``: a maximum-size upload that also decodes."""
    side = int((max_bytes / 3.02) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), "PNG", compress_level=1)


def png_bomb() -> bytes:
    """A few kilobytes of 1-bit PNG that decode to 64 million pixels."""
    return encoded(Image.new("1", (8000, 8000)), "PNG")


def huge_small_png(side: int = 6300, seed: int = 0) -> bytes:
    """A ~170 KB PNG of side x side pixels (mostly flat, sparse noise): 340 MiB decoded as RGB."""
    rng = np.random.default_rng(seed)
    pixels = np.full((side, side), 200, dtype=np.uint8)
    pixels[rng.integers(0, side, 8_000), rng.integers(0, side, 8_000)] = rng.integers(0, 255, 8_000, dtype=np.uint8)
    return encoded(Image.fromarray(pixels).convert("RGB"), "PNG", compress_level=9)


def worst_case_png(max_pixels: int) -> bytes:
    """The costliest image a query may be: 16-bit greyscale (the float conversion) just under the pixel cap, as a
    gradient that compresses far below the upload limit."""
    side = int(max_pixels**0.5)
    ramp = np.add.outer(np.arange(side), np.arange(side)) * 7
    return encoded(Image.fromarray(ramp.astype(np.uint16)), "PNG")


def png_with_header_size(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR announcing width x height, then a tiny IDAT: a bomb by its header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_with_header_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(jpeg_bytes(query_photo(64)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_with_screen_size(width: int, height: int) -> bytes:
    data = bytearray(encoded(query_photo(32).convert("P"), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def ico_with_png(side: int = 6000) -> bytes:
    """An icon file whose one entry declares 256x256 and holds a side x side RGBA PNG (a few KB, flat): Pillow's
    ICO plugin decodes the PNG at its own size, 137 MiB at 6000 px, whatever the icon's header says."""
    embedded = encoded(Image.new("RGBA", (side, side), (200, 30, 30, 255)), "PNG", compress_level=9)
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(embedded), 6 + 16)
    return directory + embedded


def corrupt_png(width: int = 4000, height: int = 4000) -> bytes:
    """A ~50 KB PNG of width x height (16 Mpx: in the query cap) cut short in its last rows: the decoder fills the
    whole image, then fails."""
    return encoded(Image.new("RGB", (width, height), (90, 140, 200)), "PNG", compress_level=9)[:-64]


def jpeg2000() -> bytes:
    return encoded(query_photo(), "JPEG2000")


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def cmyk_jpeg() -> bytes:
    return encoded(query_photo().convert("CMYK"), "JPEG")


def png_16bit() -> bytes:
    grey = np.asarray(query_photo().convert("L"), dtype=np.uint16) * 257
    return encoded(Image.fromarray(grey), "PNG")


def png_palette_transparency() -> bytes:
    image = query_photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encoded(image, "PNG", transparency=0)


def png_1bit() -> bytes:
    return encoded(query_photo().convert("1"), "PNG")


def tiff_float() -> bytes:
    return encoded(Image.fromarray(np.asarray(query_photo().convert("L"), dtype=np.float32) / 255), "TIFF")


def multipart(parts: Iterable[tuple[str, str | None, str, bytes]], close: bool = True) -> bytes:
    """A multipart body of (field, filename or None, content type, content) parts."""
    body = b""
    for name, filename, content_type, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def image_form(image: bytes, filename: str = "query.png", content_type: str = "image/png") -> bytes:
    return multipart([("image", filename, content_type, image)])


@dataclass
class HttpRequest:
    """One request as the wire sees it: ``announced`` overrides Content-Length, ``stall`` sends only the first
    ``stall`` bytes of the body and then waits, ``chunked`` streams the body without a Content-Length."""

    method: str = "POST"
    path: str = "/v1/search"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    announced: int | None = None
    stall: int | None = None
    chunked: bool = False


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def send(host: str, port: int, request: HttpRequest, timeout_s: float = 60, source: str = "") -> HttpAnswer:
    """``request`` over a new connection (from the loopback address ``source``, if given)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s, source_address=(source, 0) if source else None)
    try:
        if request.chunked:
            chunks = (request.body[i : i + 65536] for i in range(0, len(request.body), 65536))
            connection.request(request.method, request.path, body=chunks, headers=request.headers, encode_chunked=True)
        else:
            connection.putrequest(request.method, request.path, skip_accept_encoding=True)
            for name, value in request.headers.items():
                connection.putheader(name, value)
            length = request.announced if request.announced is not None else len(request.body)
            if request.body or request.announced is not None or request.method == "POST":
                connection.putheader("Content-Length", str(length))
            connection.endheaders()
            if request.stall is not None:
                connection.send(request.body[: request.stall])
            elif request.announced is None and request.body:
                connection.send(request.body)
        response = connection.getresponse()
        return HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
