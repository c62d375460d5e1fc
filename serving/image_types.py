"""The media type of an image file from its first bytes, never from its name."""

from __future__ import annotations

from pathlib import Path

# Enough leading bytes to tell every format below apart.
HEAD_BYTES = 12
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)


def sniff_image_type(head: bytes) -> str | None:
    """``image/...`` for the raster formats a browser may be sent, else None (HTML, SVG, scripts, anything else)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((media_type for magic, media_type in SIGNATURES if head.startswith(magic)), None)


def image_file_type(path: Path) -> str | None:
    with path.open("rb") as handle:
        return sniff_image_type(handle.read(HEAD_BYTES))
