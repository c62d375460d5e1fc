"""Peak bytes per pixel of ``preprocess_bytes`` for each accepted format and mode: the table behind
serving/decode_budget.py's DECODE_BYTES_PER_PIXEL.

    PYTHONPATH=. .venv/bin/python bench/decode_cost.py [--side 2000]

Each case decodes in a fresh interpreter; its growth of VmHWM (peak RSS, which starts afresh at exec, unlike
ru_maxrss) while ``preprocess_bytes`` runs, divided by the pixels, is the figure. Prints a Markdown table, worst first.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHILD = (
    "import json, re, sys\n"
    "from imagesearch.preprocess import PreprocessConfig, preprocess_bytes\n"
    "peak = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "before = peak()\n"
    "preprocess_bytes(data, PreprocessConfig(max_pixels=10**9))\n"
    "print(json.dumps(peak() - before))\n"
)


def images(side: int) -> dict[str, tuple[Image.Image, str, dict]]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    cases: dict[str, tuple[Image.Image, str, dict]] = {}
    for fmt in ("JPEG",):
        for mode in ("L", "RGB", "CMYK"):
            cases[f"{fmt} {mode}"] = (rgb.convert(mode), fmt, {})
    for mode in ("1", "L", "LA", "RGB", "RGBA"):
        cases[f"PNG {mode}"] = (rgba.convert(mode), "PNG", {})
    cases["PNG P+transparency"] = (palette, "PNG", {"transparency": 0})
    cases["PNG I;16"] = (grey16, "PNG", {})
    cases["GIF P"] = (palette, "GIF", {})
    cases["WEBP RGB"] = (rgb, "WEBP", {})
    cases["WEBP RGBA"] = (rgba, "WEBP", {})
    for mode in ("1", "L", "P", "RGB", "RGBA"):
        cases[f"BMP {mode}"] = (palette if mode == "P" else rgba.convert(mode), "BMP", {})
    for mode in ("1", "L", "LA", "RGB", "RGBA", "CMYK"):
        cases[f"TIFF {mode}"] = (rgba.convert(mode), "TIFF", {})
    cases["TIFF I;16"] = (grey16, "TIFF", {})
    cases["TIFF I"] = (grey16.convert("I"), "TIFF", {})
    cases["TIFF F"] = (Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.float32) / 255), "TIFF", {})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2000)
    args = parser.parse_args()
    pixels = args.side**2
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image"
        for name, (image, fmt, options) in images(args.side).items():
            buffer = io.BytesIO()
            image.save(buffer, fmt, **options)
            path.write_bytes(buffer.getvalue())
            done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
            rows.append((json.loads(done.stdout) / pixels, name))
    print(f"| format and mode ({args.side}x{args.side}) | peak bytes per pixel |\n|---|---|")
    print("\n".join(f"| {name} | {cost:.1f} |" for cost, name in sorted(rows, reverse=True)))


if __name__ == "__main__":
    main()
