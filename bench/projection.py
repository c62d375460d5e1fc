"""Projecting a million stored vectors: a learned head vs PCA-whitening, and the projection path before this one.

    PYTHONPATH=. .venv/bin/python bench/projection.py [--items 1000000] [--in-dim 1280] [--out-dim 512] [--scratch DIR]

Fabricates ``--items`` unit vectors of ``--in-dim`` dimensions stored as build_index stores them (float16
``embeddings.npy``, written in chunks), then measures, each case in a process of its own (its peak RSS through
``bench/rusage.py``) reading that file as build_index does (``StoredVectors``, chunk by chunk):

    linear head         a random ``--in-dim`` -> ``--out-dim`` LinearHead applied (``StoredVectors.search_space``)
    PCA-whitening       learned on a seeded 200,000-row sample as build_index does, then applied the same way
    head, before        the same head applied as the whitening was before projections: 65,536 float32 rows at a
                        time, ``l2_normalize((rows - mean) @ weight)`` with its full-chunk temporaries (the baseline)

Seconds are wall time of the projection (fit separately), after the file is written (it is then in the page cache).
Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from imagesearch.index_store import StoredVectors, write_vectors
from imagesearch.projection import LinearHead, PcaWhitening, Projection
from imagesearch.vectors import l2_normalize

CASES = ("linear head", "PCA-whitening", "head, before")
FIT_SAMPLE = 200_000
BEFORE_CHUNK = 65_536
GIB = 1 << 30


def fabricate(path: Path, items: int, dim: int, seed: int = 0) -> None:
    """Unit vectors around a few hundred centres (not isotropic: the whitening has axes to find), float16."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((256, dim), dtype=np.float32)

    def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, items, 65_536):
            count = min(65_536, items - start)
            rows = centres[rng.integers(0, len(centres), count)] + rng.standard_normal((count, dim), dtype=np.float32)
            yield l2_normalize(rows)

    write_vectors(path, chunks(), (items, dim))


def head(in_dim: int, out_dim: int, seed: int = 1) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(mean=0.01 * rng.standard_normal(in_dim, dtype=np.float32),
                      weight=(rng.standard_normal((in_dim, out_dim), dtype=np.float32) / np.sqrt(in_dim)).astype(np.float32))


def before(stored: StoredVectors, projection: LinearHead) -> np.ndarray:
    """The projection path before this one (Whitening.apply over StoredVectors.search_space's chunks)."""
    result = np.empty((len(stored), projection.out_dim), np.float32)
    for start in range(0, len(stored), BEFORE_CHUNK):
        rows = stored.rows(start, start + BEFORE_CHUNK)
        result[start : start + BEFORE_CHUNK] = l2_normalize((rows - projection.mean) @ projection.weight)
    return result


def run_case(case: str, path: Path, out_dim: int) -> dict[str, float]:
    """One case in this process: fit and projection seconds, and a checksum-like figure of the output."""
    stored = StoredVectors(path)
    fit_s = 0.0
    projection: Projection = head(stored.shape[1], out_dim)
    if case == "PCA-whitening":
        began = time.perf_counter()
        rows = np.sort(np.random.default_rng(0).choice(len(stored), min(FIT_SAMPLE, len(stored)), replace=False))
        projection = PcaWhitening.fit(stored.take(rows), out_dim)
        fit_s = time.perf_counter() - began
    began = time.perf_counter()
    projected = before(stored, projection) if case == "head, before" else stored.search_space(projection)  # type: ignore[arg-type]
    apply_s = time.perf_counter() - began
    return {"fit_s": fit_s, "apply_s": apply_s, "first_row_sum": float(projected[0].sum()),
            "mean_norm": float(np.linalg.norm(projected[:: max(1, len(projected) // 1000)], axis=1).mean())}


def measured(case: str, path: Path, out_dim: int, scratch: Path) -> dict[str, float]:
    """The case in a child process under bench/rusage.py: its own wall time, CPU time and peak RSS."""
    usage, result = scratch / "usage.json", scratch / "result.json"
    command = [sys.executable, "-m", "bench.rusage", str(usage), "--", sys.executable, "-m", "bench.projection",
               "--case", case, "--file", str(path), "--out-dim", str(out_dim), "--result", str(result)]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return {**json.loads(result.read_text()), **json.loads(usage.read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--in-dim", type=int, default=1280)
    parser.add_argument("--out-dim", type=int, default=512)
    parser.add_argument("--scratch", type=Path, default=None, help="where the fabricated vectors go (default: a temp dir)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # a child process runs one case
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        args.result.write_text(json.dumps(run_case(args.case, args.file, args.out_dim)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-projection-", dir=args.scratch) as scratch:
        path = Path(scratch) / "embeddings.npy"
        began = time.perf_counter()
        fabricate(path, args.items, args.in_dim)
        print(f"{args.items:,} x {args.in_dim} float16 vectors ({path.stat().st_size / GIB:.2f} GiB) written in "
              f"{time.perf_counter() - began:.1f}s; projecting to {args.out_dim}-d; {os.cpu_count()} CPUs; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        print("\n| case | fit s | project s | rows/s | peak RSS GiB | CPU s | mean norm | row 0 sum |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for case in CASES:
            r = measured(case, path, args.out_dim, Path(scratch))
            print(f"| {case} | {r['fit_s']:.1f} | {r['apply_s']:.1f} | {args.items / r['apply_s']:,.0f} | "
                  f"{r['peak_rss_bytes'] / GIB:.2f} | {r['cpu_seconds']:.1f} | {r['mean_norm']:.4f} | "
                  f"{r['first_row_sum']:.5f} |", flush=True)
        print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
