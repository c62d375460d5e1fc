"""The OpenVINO conversion cache's effect on start-up: fresh processes build the production embedder
(:class:`imagesearch.embedder.Embedder`, OpenVINO runtime) with the cache off (converted in memory), with an empty
cache (converted, then saved) and with a filled one (read, compiled, checked against torch), and with the torch
runtime as the floor; the cases alternate in each round so a shift in the machine's load hits all alike.

    PYTHONPATH=. .venv/bin/python bench/openvino_cache.py [--rounds 3]

"build s" is the embedder's construction inside the process (weights, conversion or cache read, compile, probe);
"process s" is the whole process, imports included. Medians over the rounds. Prints the load average before and
after. Never run as a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ("import sys, time; from imagesearch.embedder import Embedder; began = time.perf_counter(); "
         "Embedder(device='cpu', runtime=sys.argv[1]); print(time.perf_counter() - began)")


def load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def timed_build(runtime: str, cache_dir: str) -> tuple[float, float]:
    """(build s, process s) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_OPENVINO_CACHE_DIR": cache_dir}
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", BUILD, runtime], cwd=ROOT, env=env, capture_output=True,
                            text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1]), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {load()}")
    cases = ("openvino, cache off", "openvino, empty cache", "openvino, cached", "torch")
    times: dict[str, list[tuple[float, float]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="openvino-cache-bench-") as scratch:
        cache = Path(scratch) / "cache"
        for _ in range(args.rounds):
            times["openvino, cache off"].append(timed_build("openvino", ""))
            shutil.rmtree(cache, ignore_errors=True)
            times["openvino, empty cache"].append(timed_build("openvino", str(cache)))
            times["openvino, cached"].append(timed_build("openvino", str(cache)))
            times["torch"].append(timed_build("torch", ""))
    print()
    print("| start-up | build s (median) | process s (median) | builds |")
    print("|---|---:|---:|---|")
    for case in cases:
        builds, processes = zip(*times[case], strict=True)
        print(f"| {case} | {statistics.median(builds):.1f} | {statistics.median(processes):.1f} | "
              f"{', '.join(f'{value:.1f}' for value in builds)} |")
    print()
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
