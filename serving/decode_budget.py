"""How many query images may decode at once within a memory budget.

Decoding is the one step whose memory grows with the client's input: up to ``DECODE_BYTES_PER_PIXEL`` bytes
per pixel of the image, the measured worst of the accepted formats (imagesearch.preprocess.ACCEPTED_FORMATS;
every other format is refused before it decodes). Peak of ``preprocess_bytes`` per pixel, 2000x2000 images,
VmHWM of a fresh interpreter (``PYTHONPATH=. .venv/bin/python bench/decode_cost.py``, Pillow 13.0):

| format, mode | bytes/px | format, mode | bytes/px | format, mode | bytes/px |
|---|---|---|---|---|---|
| WebP RGBA | 21.8 | BMP P | 11.0 | BMP L, 1 | 6.0 |
| WebP RGB | 17.8 | PNG P+transparency | 10.4 | TIFF L, 1 | 6.0 |
| TIFF I (32-bit) | 14.8 | GIF P | 10.3 | TIFF RGB | 5.5 |
| TIFF F (float) | 14.7 | TIFF RGBA | 10.0 | BMP RGB, RGBA | 5.5 |
| TIFF LA | 14.0 | PNG RGBA | 9.4 | PNG 1, L | 5.4 |
| PNG LA | 13.4 | TIFF CMYK | 9.0 | PNG RGB | 4.8 |
| TIFF I;16 | 12.8 | PNG I;16 | 11.4 | JPEG L, RGB, CMYK | 1.1 (decoded at reduced size) |

The pixel cap bounds one image; the permits bound how many at once.
"""

from __future__ import annotations

DECODE_BYTES_PER_PIXEL = 22  # WebP RGBA, the worst in the table above
MIB = 1024 * 1024


def worst_case_decode_bytes(max_pixels: int) -> int:
    return max_pixels * DECODE_BYTES_PER_PIXEL


def decode_permits(budget_mb: int, max_pixels: int) -> int:
    """Concurrent decodes that fit ``budget_mb`` MiB at the worst case; always at least one."""
    return max(1, budget_mb * MIB // worst_case_decode_bytes(max_pixels))
