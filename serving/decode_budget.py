"""How many query images may decode at once within a memory budget.

Decoding is the one step whose memory grows with the client's input: up to
``DECODE_BYTES_PER_PIXEL`` bytes per pixel of the image (measured peak of ``preprocess_bytes`` over
Pillow's modes: 16-bit and float images ~16, RGBA and palette+transparency ~13-14, RGB ~8, JPEG far less
thanks to reduced-size decoding). The pixel cap bounds one image; the permits bound how many at once.
"""

from __future__ import annotations

DECODE_BYTES_PER_PIXEL = 16
MIB = 1024 * 1024


def worst_case_decode_bytes(max_pixels: int) -> int:
    return max_pixels * DECODE_BYTES_PER_PIXEL


def decode_permits(budget_mb: int, max_pixels: int) -> int:
    """Concurrent decodes that fit ``budget_mb`` MiB at the worst case; always at least one."""
    return max(1, budget_mb * MIB // worst_case_decode_bytes(max_pixels))
