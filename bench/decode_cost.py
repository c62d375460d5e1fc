"""Peak memory of decoding each accepted image of the hostile corpus, against what the server reserves for it:
the table behind serving/memory_budget.py's DECODE_BYTES_PER_PIXEL.

    PYTHONPATH=. .venv/bin/python bench/decode_cost.py [--side 2000]

The samples are tests/serving/hostile_corpus.py's accepted ones: every accepted format in every mode Pillow writes,
the TIFF compressions, animations and MPO (``--side`` 0: at the in-cap maximum size, slow). Each decodes in a fresh
interpreter; its growth of VmHWM (peak RSS, which starts afresh at exec, unlike ru_maxrss) while ``preprocess_bytes``
runs is the peak. "per pixel" divides it by the pixels the decoder allocates for (the header's size, after JPEG's
reduced-scale draft), as the reservation does; "of reserved" is the peak over ``decode_bytes`` of the sample (it
must stay under 100 %). Prints a Markdown table, worst first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from imagesearch.settings import Settings
from serving.memory_budget import DECODE_BYTES_PER_PIXEL
from tests.serving.hostile_corpus import corpus

CHILD = (
    "import json, re, sys\n"
    "from imagesearch.preprocess import PreprocessConfig, open_image, preprocess_bytes\n"
    "from serving.memory_budget import decode_bytes\n"
    "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "config = PreprocessConfig(max_pixels=int(sys.argv[2]))\n"
    "with open_image(data, config) as image:\n"
    "    opened = image.format, image.mode, image.width * image.height\n"
    "before = peak()\n"
    "preprocess_bytes(data, config)\n"
    "print(json.dumps([*opened, peak() - before, decode_bytes(opened[2], len(data))]))\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2000, help="side of the format x mode samples; 0: in-cap maximum")
    args = parser.parse_args()
    serving = Settings.from_env({}).serving
    samples = [s for s in corpus(serving.query_max_image_pixels, serving.max_upload_bytes, args.side or None) if s.decodes]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image"
        for sample in samples:
            path.write_bytes(sample.data)
            done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(serving.query_max_image_pixels)],
                                  capture_output=True, text=True, check=True)
            fmt, mode, pixels, peak, reserved = json.loads(done.stdout)
            rows.append((peak / reserved, sample.name, fmt, mode, pixels, peak, reserved))
    print("| sample | opened as | pixels decoded | peak MiB | per pixel | reserved MiB | of reserved |\n"
          "|---|---|---|---|---|---|---|")
    for share, name, fmt, mode, pixels, peak, reserved in sorted(rows, reverse=True):
        print(f"| {name} | {fmt} {mode} | {pixels:,} | {peak / 2**20:.0f} | {peak / pixels:.1f} | {reserved / 2**20:.0f} | "
              f"{share:.0%} |")
    print(f"\nDECODE_BYTES_PER_PIXEL = {DECODE_BYTES_PER_PIXEL}; {len(rows)} samples; worst share of the reservation "
          f"{max(rows)[0]:.0%}")


if __name__ == "__main__":
    main()
