"""An hourly run's index work: the previous tree index updated (rows deleted, vectors upserted) vs one built in full.

    PYTHONPATH=. .venv/bin/python bench/index_update.py [--items 200000] [--dim 256] [--changed 0.01] [--noise 1.0]

Fabricates ``--items`` clustered unit vectors (1,000 Gaussian clusters of spread ``--noise``) and builds the tree
index ``choose_params`` picks for them, saved as a version holds it. Then ``--changed`` of the items change (their
rows deleted, as many new vectors from the same clusters added) and, in one run, side by side:

    update      build_index's path: the saved index loaded (``VectorIndex.load``), ``update`` (delete + upsert),
                ScaNN's health statistics, serialized
    full build  ``VectorIndex.build`` on the same items, ScaNN's health statistics, serialized

and recall@10 of each against exact search on the same items (``--queries`` of them as queries), as the quality gate
measures it (``tasks.metrics.recall_at_k``). Never run as a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from imagesearch.index import VectorIndex, choose_params
from imagesearch.vectors import l2_normalize
from tasks.metrics import recall_at_k

CLUSTERS = 1000


def clustered(rng: np.random.Generator, count: int, centres: np.ndarray, noise: float) -> np.ndarray:
    picks = rng.integers(0, len(centres), count)
    return l2_normalize(centres[picks] + noise * rng.normal(size=(count, centres.shape[1])).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=1.0, help="each vector's spread around its cluster's centre")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(CLUSTERS, args.dim)).astype(np.float32)
    first = clustered(rng, args.items, centres, args.noise)
    params = choose_params(args.items)
    changed = int(args.items * args.changed)
    deleted = np.sort(rng.choice(args.items, changed, replace=False))
    new = clustered(rng, changed, centres, args.noise)
    rows: list[tuple[str, float, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-update-") as scratch:
        previous = Path(scratch) / "previous"
        start = time.perf_counter()
        VectorIndex.build(first, params).save(previous)
        initial = time.perf_counter() - start

        start = time.perf_counter()
        updated = VectorIndex.load(previous, params, args.items)
        order = updated.update(deleted, new)
        health = updated.health()
        updated.save(Path(scratch) / "updated")
        update_s = time.perf_counter() - start
        database = np.concatenate([first, new])[order]
        queries = np.sort(rng.choice(len(database), args.queries, replace=False))
        rows.append(("update", update_s, recall_at_k(updated, database, queries), health))
        del updated

        start = time.perf_counter()
        rebuilt = VectorIndex.build(database, params)
        health = rebuilt.health()
        rebuilt.save(Path(scratch) / "rebuilt")
        rows.append(("full build", time.perf_counter() - start, recall_at_k(rebuilt, database, queries), health))
    load = os.getloadavg()
    print(f"{args.items:,} items x {args.dim}-d (noise {args.noise}), {params.num_leaves} leaves; {changed:,} changed "
          f"({args.changed:.1%}: deleted + as many added); the first build took {initial:.1f} s")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| index | seconds | recall@10 | avg quantization error | weighted relative imbalance |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, recall, stats in rows:
        print(f"| {name} | {seconds:.1f} | {recall:.4f} | {stats['avg_quantization_error']:.4f} | "
              f"{stats['partition_weighted_avg_relative_imbalance']:.4f} |")


if __name__ == "__main__":
    main()
