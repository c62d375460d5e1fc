"""Category indexes against a memory budget: their RSS, and filtered-search recall and latency with and without them.

    PYTHONPATH=. .venv/bin/python bench/category_memory.py [--items 200000] [--categories 20] [--max-rows 1024]

Fabricates ``--items`` unit vectors of 512 dimensions around 10 centres per category (a category is a region of
the space, as real categories are), builds the whole index as the pipeline does (``choose_params``), then in the
same process: filtered search with no category index (a budget of 0), with a budget of half what all of them
take, with no bound, and with no bound and the tree + AH index per category that served before the int8
one. Per case: category indexes built, RSS they added, and for
category filters from queries of that category ("near") and of another ("far"): recall@10 against exact search
over the category's items, capped answers and ms per query. The category sizes are chosen to lie between
``--max-rows`` and the share the whole index finds, so each would get an index without a budget.
Never run as a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from types import SimpleNamespace

import numpy as np

from imagesearch.index import VectorIndex, choose_params, exact_search
from imagesearch.index_store import LoadedIndex
from imagesearch.projection import IdentityProjection
from serving.memory_limit import MIB, category_index_bytes, rss_bytes
from serving.search import CATEGORY_INDEX, Filters, build_category_indexes, nearest

DIM = 512
CENTRES_PER_CATEGORY = 10


def fabricate(items: int, categories: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((categories * CENTRES_PER_CATEGORY, DIM), dtype=np.float32)
    centre_of = rng.integers(0, len(centres), items)
    vectors = centres[centre_of]
    vectors += 1.2 * rng.standard_normal((items, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = np.asarray([f"c{i}" for i in range(categories)], dtype=object)
    return vectors, names[centre_of // CENTRES_PER_CATEGORY]


def served(vectors: np.ndarray, categories: np.ndarray, whole: VectorIndex) -> LoadedIndex:
    return LoadedIndex(manifest=SimpleNamespace(version="bench"), items={}, embeddings=vectors, vectors=whole,  # type: ignore[arg-type]
                       projection=IdentityProjection(DIM), row_of={}, categories=categories, prices=np.zeros(len(vectors)),
                       on_sale=np.zeros(len(vectors), dtype=bool))


def filtered_quality(index: LoadedIndex, max_rows: int, queries: int) -> dict[str, tuple[float, int, float]]:
    """(recall@10, capped answers, ms per query) for near and far category filters."""
    names = sorted(set(index.categories.tolist()))
    rng = np.random.default_rng(3)
    results: dict[str, tuple[float, int, float]] = {}
    for kind, offset in (("near", 0), ("far", 1)):
        recalls, capped, seconds = [], 0, 0.0
        for q in range(queries):
            own = names[q % len(names)]
            target = names[(q + offset) % len(names)]
            query = index.embeddings[rng.choice(np.flatnonzero(index.categories == own))]
            subset = np.flatnonzero(index.categories == target)
            rows, _ = exact_search(index.embeddings[subset], query[None], 10)
            truth = set(subset[rows[0]].tolist())
            began = time.perf_counter()
            found = nearest(index, query, 10, Filters(category=target), max_rows=max_rows)
            seconds += time.perf_counter() - began
            assert set(index.categories[found.rows]) <= {target}
            recalls.append(len(truth & set(found.rows.tolist())) / 10)
            capped += found.capped
        results[kind] = (statistics.mean(recalls), capped, seconds / queries * 1000)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--max-rows", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    vectors, categories = fabricate(args.items, args.categories)
    began = time.perf_counter()
    whole = VectorIndex.build(vectors, choose_params(args.items))
    print(f"{args.items:,} items x {DIM} dims, {args.categories} categories, max_rows {args.max_rows}; whole index "
          f"built in {time.perf_counter() - began:.1f} s; search-space vectors {vectors.nbytes / MIB:.0f} MiB; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    full_need = sum(category_index_bytes(int((categories == name).sum()), DIM) for name in set(categories.tolist()))
    print("\n| category-index budget | indexes built | RSS added MiB | share of search-space vectors | build s | near recall@10 "
          "| near capped | near ms | far recall@10 | far capped | far ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = (("0 (none)", 0, CATEGORY_INDEX), (f"{full_need // 2 // MIB} MiB (half), int8", full_need // 2, CATEGORY_INDEX),
             ("unbounded, int8", None, CATEGORY_INDEX), ("unbounded, tree + AH (before)", None, None))
    for label, budget, params in cases:
        index = served(vectors, categories, whole)
        before = rss_bytes()
        began = time.perf_counter()
        built = build_category_indexes(index, args.max_rows, budget_bytes=budget,
                                       params=lambda count, fixed=params: fixed or choose_params(count))
        took = time.perf_counter() - began
        added = rss_bytes() - before
        quality = filtered_quality(index, args.max_rows, args.queries)
        near, far = quality["near"], quality["far"]
        print(f"| {label} | {built} | {added / MIB:.0f} | {added / vectors.nbytes:.2f} | {took:.1f} | {near[0]:.3f} | "
              f"{near[1]} | {near[2]:.2f} | {far[0]:.3f} | {far[1]} | {far[2]:.2f} |", flush=True)
        index.category_indexes.clear()  # each case starts with none
    index = served(vectors, categories, whole)
    quality = filtered_quality(index, 10**9, args.queries)  # every category filter: an exact pass over its rows
    near, far = quality["near"], quality["far"]
    print(f"| none, exact pass over the category's rows (no copy held) | 0 | 0 | 0 | 0 | {near[0]:.3f} | {near[1]} | "
          f"{near[2]:.2f} | {far[0]:.3f} | {far[1]} | {far[2]:.2f} |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
