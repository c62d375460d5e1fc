"""Start-up cost of the step pods: wall seconds and peak RSS of ``python -m tasks.steps.<step> --help``, best of N.

    PYTHONPATH=. .venv/bin/python bench/step_imports.py [--repeats 3]

The baseline in the same run is ``tasks.steps.embed``, the one step that needs torch; ``torch loaded`` says whether
the step imported it. Never run as a test.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("embed", "snapshot", "preprocess", "build_index", "evaluate", "publish")
PROBE = "import runpy, sys\ntry:\n    runpy.run_module(sys.argv[1], run_name='__main__')\nexcept SystemExit:\n    pass\n" \
        "print('torch' in sys.modules, file=sys.stderr)\n"


def measure(step: str) -> tuple[float, int, bool]:
    """(wall seconds, peak RSS in KiB, torch loaded) of one ``--help``."""
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", PROBE, f"tasks.steps.{step}", "--help"], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    torch_loaded = process.stderr.read().strip().endswith("True")  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"tasks.steps.{step} --help exited {process.returncode}")
    return wall, usage.ru_maxrss, torch_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'step':<14}{'wall s (best)':>15}{'peak RSS MiB':>14}{'torch loaded':>14}")
    for step in STEPS:
        runs = [measure(step) for _ in range(args.repeats)]
        wall = min(run[0] for run in runs)
        rss = min(run[1] for run in runs) / 1024
        print(f"{step:<14}{wall:>15.2f}{rss:>14.0f}{runs[0][2]!s:>14}")


if __name__ == "__main__":
    main()
