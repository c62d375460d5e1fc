"""Each search-space option side by side in one run: exact search, ScaNN's tree + AH index re-ranking in float32,
bfloat16 and int8 (``IndexParams.reorder_dtype``), int8 with SOAR spilling (``soar_lambda``), and faiss HNSW32.

    PYTHONPATH=. .venv/bin/python bench/index.py --real 70000 --scale 1000000
    PYTHONPATH=. .venv/bin/python bench/index.py --real 0 --scale 300000   # no embedding: clustered vectors

Real vectors: the Fashion-MNIST demo catalog embedded with the production embedder (cached under
data/bench/); ``--real 0``: 1280-d vectors drawn around 2,000 random centres instead (no catalog, no model).
Scale set: those vectors perturbed with Gaussian noise and re-normalised (cos ≈ 0.9 to their source) up to
--scale rows. Queries are held-out perturbed vectors. Reports build seconds, index size on disk, the memory the
saved index takes once loaded (RSS of a fresh process after loading it, less that before), recall@10 against
exact search, single-query and batched QPS. Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imagesearch.catalog import read_catalog
from imagesearch.embedder import Embedder
from imagesearch.index import IndexParams, VectorIndex, choose_params, exact_search
from imagesearch.input_policy import InputPolicy
from imagesearch.projection import PcaWhitening
from imagesearch.settings import DATA_DIR, Settings, get_settings
from imagesearch.uri_reader import read_bytes
from imagesearch.vectors import l2_normalize

K = 10
CACHE = DATA_DIR / "bench"


def clustered_embeddings(count: int, rng: np.random.Generator, dim: int = 1280, centres: int = 2000) -> np.ndarray:
    """Unit vectors around random centres (cos ≈ 0.8 to their centre): neighbours as a catalog's, without one."""
    middle = l2_normalize(rng.normal(size=(centres, dim)).astype(np.float32))
    return perturbed(middle, count, rng, 0.75 / np.sqrt(dim))


def real_embeddings(count: int) -> np.ndarray:
    embedder = Embedder()
    path = CACHE / f"fashion-{count}-{embedder.model_id}.npy"
    if path.exists():
        return np.load(path)
    catalog = str(DATA_DIR / "catalogs/fashion-mnist/catalog.csv")
    settings = get_settings()
    items = read_catalog(catalog, InputPolicy.for_catalogs(settings.inputs)).items[:count]
    policy = InputPolicy.for_images(settings.inputs, catalog)
    vectors = []
    began = time.perf_counter()
    for start in range(0, len(items), 256):
        arrays = [embedder.preprocess(read_bytes(item.image_uri, policy)) for item in items[start : start + 256]]
        vectors.append(embedder.embed_many(arrays, 32))
        done = start + len(arrays)
        print(f"  embedded {done}/{len(items)} ({done / (time.perf_counter() - began):.0f} img/s)", flush=True)
    result = np.concatenate(vectors)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, result)
    return result


def perturbed(real: np.ndarray, count: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    out = np.empty((count, real.shape[1]), np.float32)
    for start in range(0, count, 100_000):
        stop = min(start + 100_000, count)
        source = real[rng.integers(0, len(real), stop - start)]
        out[start:stop] = l2_normalize(source + rng.normal(0, sigma, source.shape).astype(np.float32))
    return out


def exact_batched(database: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.concatenate([exact_search(database, queries[i : i + 100], k)[0] for i in range(0, len(queries), 100)])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True)) / truth.size


def qps(search_one: Callable[[np.ndarray], object], queries: np.ndarray, limit_s: float = 10.0) -> float:
    began, done = time.perf_counter(), 0
    for query in queries:
        search_one(query)
        done += 1
        if time.perf_counter() - began > limit_s:
            break
    return done / (time.perf_counter() - began)


def batched_qps(search_all: Callable[[np.ndarray], object], queries: np.ndarray) -> float:
    began = time.perf_counter()
    search_all(queries)
    return len(queries) / (time.perf_counter() - began)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def loaded_bytes(kind: str, directory: Path, params: IndexParams | None = None) -> int:
    """What loading the saved index adds to a fresh process's RSS (its libraries imported first)."""
    argv = [sys.executable, __file__, "--measure-load", kind, str(directory), json.dumps(params and params.to_dict())]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": "."})
    return int(result.stdout.strip().splitlines()[-1])


def measure_load(kind: str, directory: str, params: str) -> None:
    if kind == "scann":
        import scann  # noqa: F401  (its libraries are not the index's memory)

        before = rss_bytes()
        index = VectorIndex.load(Path(directory), IndexParams(**json.loads(params)), 0)
    else:
        import faiss

        before = rss_bytes()
        index = faiss.read_index(os.path.join(directory, "hnsw"))
    print(rss_bytes() - before)
    del index


def bench_scann(database: np.ndarray, queries: np.ndarray, truth: np.ndarray, params: IndexParams) -> dict:
    began = time.perf_counter()
    index = VectorIndex.build(database, params)
    build = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as scratch:
        index.save(Path(scratch))
        size = dir_size(Path(scratch))
        memory = loaded_bytes("scann", Path(scratch), params)
    found = np.concatenate([index.search(queries[i : i + 100], K)[0] for i in range(0, len(queries), 100)])
    return {"build_s": build, "bytes": size, "memory": memory, "recall": recall(found, truth),
            "qps1": qps(lambda q: index.search(q[None], K), queries), "qpsb": batched_qps(lambda q: index.search(q, K), queries)}


def bench_hnsw(database: np.ndarray, queries: np.ndarray, truth: np.ndarray, target: float) -> dict:
    import faiss

    began = time.perf_counter()
    index = faiss.IndexHNSWFlat(database.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(database)
    build = time.perf_counter() - began
    chosen = {}
    for ef in (16, 32, 64, 128, 256, 512):
        index.hnsw.efSearch = ef
        found = index.search(queries, K)[1]
        chosen = {"ef": ef, "recall": recall(found, truth)}
        if chosen["recall"] >= target:
            break
    with tempfile.TemporaryDirectory() as scratch:
        faiss.write_index(index, os.path.join(scratch, "hnsw"))
        size = dir_size(Path(scratch))
        memory = loaded_bytes("faiss", Path(scratch))
    return {"build_s": build, "bytes": size, "memory": memory, **chosen,
            "qps1": qps(lambda q: index.search(q[None], K), queries), "qpsb": batched_qps(lambda q: index.search(q, K), queries)}


def report(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n### {title}\n")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}\n")
    print("| method | build s | on disk MB | in memory MB | recall@10 | QPS single | QPS batched |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows:
        size = f"{r['bytes'] / 1e6:.0f}" if "bytes" in r else "—"
        memory = f"{r['memory'] / 1e6:.0f}" if "memory" in r else "—"
        build = f"{r['build_s']:.1f}" if "build_s" in r else "—"
        print(f"| {name} | {build} | {size} | {memory} | {r['recall']:.3f} | {r['qps1']:.1f} | {r['qpsb']:.1f} |",
              flush=True)


def run(title: str, raw_database: np.ndarray, raw_queries: np.ndarray, with_hnsw: bool) -> None:
    """As the pipeline does: learn the PCA-whitening on the indexed vectors, project both sides, index."""
    settings = Settings.from_env({})
    began = time.perf_counter()
    whitening = PcaWhitening.fit(raw_database, settings.pipeline.whitening_dims, settings.pipeline.whitening_shrinkage)
    database, queries = whitening.apply(raw_database), whitening.apply(raw_queries)
    title += f"; whitened to {whitening.out_dim}-d in {time.perf_counter() - began:.1f}s"
    truth = exact_batched(database, queries, K)
    rows = [("exact (numpy/BLAS, float32)", {"recall": 1.0, "bytes": database.nbytes, "memory": database.nbytes,
                                             "qps1": qps(lambda q: exact_search(database, q[None], K), queries),
                                             "qpsb": batched_qps(lambda q: exact_batched(database, q, K), queries)})]
    picked = choose_params(len(database))
    for reorder_dtype, soar_lambda in (("float32", None), ("bfloat16", None), ("int8", None), ("int8", 1.5)):
        params = choose_params(len(database), reorder_dtype=reorder_dtype, soar_lambda=soar_lambda)  # type: ignore[arg-type]
        name = (f"ScaNN {params.kind}, leaves {params.num_leaves}/{params.leaves_to_search}, reorder {params.reorder} "
                f"{reorder_dtype}" + (f", SOAR λ {soar_lambda}" if soar_lambda else "")
                + (" (the default)" if params == picked else ""))
        rows.append((name, bench_scann(database, queries, truth, params)))
    if with_hnsw:
        hnsw = bench_hnsw(database, queries, truth, next(r["recall"] for name, r in rows if "(the default)" in name))
        rows.append((f"faiss HNSW32 (efSearch {hnsw['ef']})", hnsw))
    report(title, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=int, default=70_000)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sigma", type=float, default=0.0135)
    parser.add_argument("--no-hnsw", action="store_true")
    parser.add_argument("--measure-load", nargs=3, metavar=("KIND", "DIRECTORY", "PARAMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        measure_load(*args.measure_load)
        return
    rng = np.random.default_rng(0)
    real = real_embeddings(args.real) if args.real else clustered_embeddings(30_000, rng)
    held_out = rng.permutation(len(real))
    queries, database = real[held_out[: args.queries]], real[held_out[args.queries :]]
    print(f"vectors: {real.shape[1]}-d float32; CPU threads: {os.cpu_count()}")
    source = "real Fashion-MNIST embeddings" if args.real else "clustered 1280-d vectors"
    run(f"{len(database):,} {source}, {len(queries)} held-out queries", database, queries, not args.no_hnsw)
    if args.scale:
        scaled = perturbed(real, args.scale, rng, args.sigma)
        scale_queries = perturbed(real, args.queries, rng, args.sigma)
        run(f"{len(scaled):,} perturbed {source}, {len(scale_queries)} queries", scaled, scale_queries, not args.no_hnsw)


if __name__ == "__main__":
    main()
