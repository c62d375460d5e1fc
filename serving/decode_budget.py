"""How many query images may decode at once within a memory budget.

Decoding is the one step whose memory grows with the client's input: up to
``DECODE_BYTES_PER_PIXEL`` bytes per pixel of the image. Measured peak of ``preprocess_bytes`` per pixel
(3000x3000 images, ru_maxrss): float TIFF 13.3, LA 13.1, 16-bit PNG 11.2, palette+transparency 10.1,
RGBA 9.1, RGB 8.1, L and 1-bit 5.1, CMYK JPEG 0.7 (JPEGs decode at reduced size). The pixel cap bounds
one image; the permits bound how many at once.
"""

from __future__ import annotations

DECODE_BYTES_PER_PIXEL = 14
MIB = 1024 * 1024


def worst_case_decode_bytes(max_pixels: int) -> int:
    return max_pixels * DECODE_BYTES_PER_PIXEL


def decode_permits(budget_mb: int, max_pixels: int) -> int:
    """Concurrent decodes that fit ``budget_mb`` MiB at the worst case; always at least one."""
    return max(1, budget_mb * MIB // worst_case_decode_bytes(max_pixels))
