"""An hourly incremental run at scale: a committed version of N items, C of them changed, timed step by step.

    PYTHONPATH=. .venv/bin/python bench/pipeline.py --items 1000000 --churn 0 0.01 0.01 --serve

Fabricates, untimed, in a scratch folder: N small generated PNG images and a catalog of them; a committed
previous version of those N items whose vectors are consistent with the images (each image is one of 512
generated patterns plus a mark unique to the item; its vector is the pattern's real embedding blended a
little towards another pattern, so nothing of the N needs embedding); a GitOps repo whose overlay serves
that version. Then it gives ``churn * N`` items new images (Fashion-MNIST product photos, from the tarball
``make setup`` fetches; at most 70,000) and a later ``updated_at``, and times a real run: every
step a subprocess with its pod argv, in the DAG's order, as the local runner runs them (deploy included).
Prints, per step: wall time, CPU time, peak RSS (the step process's own ``ru_maxrss``, see ``bench.rusage``),
images fetched, embedded and reused, and the task instances the DAG would run. ``--churn 0 0.01`` runs an
hour with nothing changed, then one with 1 % changed, on the same fabricated version. Never run as a test.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.serve import start_server
from imagesearch import gitops
from imagesearch.artifacts import publish, seal
from imagesearch.catalog import CatalogItem, read_catalog, serialize_catalog
from imagesearch.demo_catalog import fashion_pictures, fetch_fashion_mnist
from imagesearch.embedder import Embedder
from imagesearch.index_store import EMBEDDINGS, ITEMS, write_items, write_vectors
from imagesearch.input_policy import InputPolicy
from imagesearch.manifest import Manifest
from imagesearch.repository import open_repository
from imagesearch.settings import DATA_DIR, PROJECT_ROOT, Settings, get_settings
from imagesearch.stamps import stamp_column
from imagesearch.vectors import l2_normalize
from tasks.operations.run_all import run_pipeline
from tasks.pipeline import REPOSITORY, SERVING_OVERLAY, VERSION, Step, default_params
from tasks.plan import snapshot_sha256

PATTERNS = 512
SIDE = 64
PREVIOUS = "20260101T000000Z"
CHUNK = 50_000
# A fabricated vector: its image's pattern, up to BLEND of the way towards a random other pattern, plus noise.
# Items then spread over a continuous region of the real embedding space (no clusters of identical
# points, which would make recall@10 against exact search meaningless).
BLEND = 0.4
NOISE = 0.004
CATEGORIES = ("shoes", "bags", "shirts", "dresses", "toys", "books", "lamps", "chairs", "mugs", "watches")


@functools.lru_cache(maxsize=PATTERNS)
def pattern(index: int) -> np.ndarray:
    """One of the generated base pictures: a background and a few coloured rectangles, seeded by ``index``."""
    rng = np.random.default_rng(index)
    image = np.empty((SIDE, SIDE, 3), np.uint8)
    image[:] = rng.integers(0, 256, 3)
    for _ in range(4):
        x0, y0 = rng.integers(0, SIDE - 8, 2)
        x1, y1 = x0 + rng.integers(6, SIDE - x0 + 1), y0 + rng.integers(6, SIDE - y0 + 1)
        image[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    return image


def item_image(item: int, base: int) -> bytes:
    """Pattern ``base`` with the item number written into the top row of pixels: unique bytes per item."""
    image = pattern(base).copy()
    image[0, :8] = np.frombuffer(item.to_bytes(24, "big"), np.uint8).reshape(8, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def write_images(task: tuple[Path, int, int]) -> list[str]:
    """Write items [start, stop), each its pattern with its mark; their sha256s."""
    folder, start, stop = task
    hashes = []
    for item in range(start, stop):
        data = item_image(item, item % PATTERNS)
        path = image_path(folder, item)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        hashes.append(hashlib.sha256(data).hexdigest())
    return hashes


def image_path(folder: Path, item: int) -> Path:
    return folder / f"{item // 10_000:03d}" / f"{item:07d}.png"


def parallel_images(folder: Path, count: int) -> list[str]:
    ranges = [(folder, start, min(start + CHUNK, count)) for start in range(0, count, CHUNK)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        return [sha for part in pool.map(write_images, ranges) for sha in part]


def fabricate(root: Path, count: int) -> tuple[Path, Path]:
    """(catalog, model repository with the committed previous version)."""
    images = root / "images"
    images.mkdir(parents=True)
    began = time.perf_counter()
    hashes = parallel_images(images, count)
    print(f"fabricated {count} images in {time.perf_counter() - began:.0f}s", file=sys.stderr, flush=True)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    items = [CatalogItem(f"item-{item:07d}", str(image_path(images, item)),
                         f"listing {item}", CATEGORIES[item % len(CATEGORIES)], float(5 + item % 200), item % 7 == 0, moment)
             for item in range(count)]
    catalog = root / "catalog.csv"
    catalog.write_bytes(serialize_catalog(items, "csv"))

    embedder = Embedder()
    base = embedder.embed_many([embedder.preprocess(item_image(0, index)) for index in range(PATTERNS)], 8)
    image_policy = InputPolicy.for_images(get_settings().inputs, str(catalog))
    snapshot = read_catalog(str(catalog), InputPolicy(local_roots=(root,))).table.drop_columns(["updated_us"])
    snapshot = snapshot.append_column("image_stamp", stamp_column(snapshot.column("image_uri"), image_policy))
    records = snapshot.to_pylist()
    for record, sha in zip(records, hashes, strict=True):
        record["image_sha256"] = sha
    version = root / "build" / PREVIOUS
    version.mkdir(parents=True)
    write_items(version / ITEMS, records)
    rng = np.random.default_rng(0)

    def chunks():  # the vectors, fabricated chunk by chunk: the image's pattern, blended towards another one
        for start in range(0, count, CHUNK):
            rows = np.arange(start, min(start + CHUNK, count))
            other = base[rng.integers(0, PATTERNS, len(rows))]
            weight = rng.uniform(0, BLEND, (len(rows), 1)).astype(np.float32)
            noise = rng.normal(0, NOISE, (len(rows), embedder.dim)).astype(np.float32)
            yield l2_normalize((1 - weight) * base[rows % PATTERNS] + weight * other + noise)

    write_vectors(version / EMBEDDINGS, chunks(), (count, embedder.dim))
    seal(version, Manifest(version=PREVIOUS, created_at=moment.isoformat(), item_count=count,
                           model=embedder.info, catalog={"uri": str(catalog), "snapshot_sha256": snapshot_sha256(snapshot)}))
    repository = root / "models"
    publish(open_repository(str(repository)), version)
    shutil.rmtree(root / "build")
    return catalog, repository


def change(catalog: Path, churn: float, hour: int = 1) -> int:
    """Give ``churn`` of the items a new image (a Fashion-MNIST product photo each, none used in an earlier hour)
    and a later updated_at; how many.

    Real photos, so that the evaluation's near-duplicate queries (made from the new images) are as hard as on
    a catalog: generated rectangles all look alike to the CNN once a copy is brightened and rotated.
    """
    items = read_catalog(str(catalog), InputPolicy(local_roots=(catalog.parent,))).items
    count = round(len(items) * churn)
    changed = np.sort(np.random.default_rng(hour).choice(len(items), count, replace=False)).tolist()
    photos = itertools.islice(fashion_pictures(fetch_fashion_mnist(DATA_DIR / "downloads", download=False)),
                              (hour - 1) * count, None)
    done = 0
    for row, (_, _, photo) in zip(changed, photos, strict=False):  # the tarball has 70,000 photos
        Image.fromarray(photo, "L").save(items[row].image_uri)
        items[row] = CatalogItem(**{**items[row].__dict__, "updated_at": items[row].updated_at + timedelta(hours=1)})
        done += 1
    catalog.write_bytes(serialize_catalog(items, "csv"))
    return done


def serve(root: Path, repository: Path, version: str, logs: Path) -> None:
    """Serving the new version: the fetcher's time and peak RSS, then the server's time to ready and its RSS."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "IMAGESEARCH_MODEL_REPOSITORY": str(repository)}
    index_dir = root / "serving-index"
    fetched, _, fetch_rss, _ = run_step(["python", "-m", "serving.fetch", "--version", version, "--repository",
                                      str(repository), "--index-dir", str(index_dir)], env,
                                     logs / version / "serving-fetch.log")
    began = time.perf_counter()
    log = logs / version / "server.log"
    process, _ = start_server(index_dir, 16, log)
    ready = time.perf_counter() - began
    status = memory(process.pid)
    deadline = time.monotonic() + 900  # then the category indexes, built in the background
    while "category indexes built" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(1)
    categories = time.perf_counter() - began - ready
    after = memory(process.pid)
    process.terminate()
    process.wait(30)
    size = sum(path.stat().st_size for path in index_dir.rglob("*") if path.is_file())
    print(f"\nserving {version} ({size / 2**30:.2f} GiB): fetch {fetched:.1f} s (peak RSS {fetch_rss / 2**20:.0f} MB); "
          f"server ready in {ready:.1f} s, RSS {status['VmRSS']} (peak {status['VmHWM']}); category indexes "
          f"{categories:.1f} s later, RSS {after['VmRSS']} (peak {after['VmHWM']})")


def memory(pid: int) -> dict[str, str]:
    """A process's VmRSS and VmHWM, as /proc reports them."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}


class BenchStepFailed(Exception):
    """A step exited non-zero; the run's table is still printed, up to and including it."""


def run_step(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int, dict[str, Any]]:
    """(wall seconds, CPU seconds, peak RSS bytes, summary) of one step run as the local runner runs it; its log
    (stderr, timestamped lines) is kept in ``log``.

    Through ``bench.rusage``, so that the peak RSS is the step's own and not this process's, inherited at fork.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+") as out, log.open("w+") as err, \
            tempfile.NamedTemporaryFile("r", suffix=".json") as usage:
        command = [sys.executable, "-m", "bench.rusage", usage.name, "--", sys.executable, *argv[1:]]
        returncode = subprocess.run(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, check=False).returncode
        measured = json.load(usage)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    print(f"{argv[2]} {' '.join(argv[5:7])}: {measured['seconds']:.1f}s", file=sys.stderr, flush=True)
    if returncode != 0:
        print(f"{' '.join(argv)} failed ({returncode}):\n{stderr[-3000:]}", file=sys.stderr, flush=True)
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {returncode}"
        return measured["seconds"], measured["cpu_seconds"], measured["peak_rss_bytes"], {"step_failed": last}
    return measured["seconds"], measured["cpu_seconds"], measured["peak_rss_bytes"], json.loads(stdout.strip().splitlines()[-1])


def serving_previous(root: Path, repository: Path) -> dict[str, str]:
    """A GitOps repo whose overlay serves the fabricated version; the steps' environment."""
    config = gitops.GitOpsConfig(url=str(root / "gitops.git"))
    gitops.bootstrap(config, model_repository=str(repository))
    gitops.bump(config, PREVIOUS, open_repository(str(repository)))
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "IMAGESEARCH_GITOPS_REPO_URL": config.url,
            "IMAGESEARCH_MODEL_REPOSITORY": str(repository),
            # The input policy reads catalogs (and their images) only under allowed roots: the bench's scratch folder.
            "IMAGESEARCH_CATALOG_PREFIXES": str(root)}


def timed_run(catalog: Path, repository: Path, version: str, env: dict[str, str], logs: Path) -> list[dict[str, Any]]:
    workspace = str(repository / "runs" / version)
    rows = []

    def step(declared: Step, argv: list[str]) -> dict[str, Any]:
        shard = argv[argv.index("--shard") + 1] if "--shard" in argv else None
        log = logs / version / f"{declared.name}{'' if shard is None else '-' + shard}.log"
        seconds, cpu, rss, summary = run_step(argv, env, log)
        rows.append({"step": declared.name if shard is None else f"{declared.name} [{shard}]", "seconds": seconds,
                     "cpu": cpu, "rss": rss, "summary": summary})
        if "step_failed" in summary:
            raise BenchStepFailed(summary["step_failed"])
        return summary

    settings = Settings.from_env(env)
    # What the DAG's steps get from a run with the default trigger form. The gate compares with the serving
    # version as in a real hourly run, except while the fabricated one serves: it has vectors but no ScaNN index
    # to score, so the first hour's gate applies its floors only (``--churn 0.01 0.01``: the second hour's
    # evaluate scores both versions).
    served = gitops.served_version(gitops.GitOpsConfig.from_settings(settings))
    inputs = {**default_params(settings, {"catalog_uri": str(catalog)}), REPOSITORY: str(repository), VERSION: version,
              SERVING_OVERLAY: "" if served == PREVIOUS else settings.gitops.overlay}
    with contextlib.suppress(BenchStepFailed):  # the failing step is the table's last row
        run_pipeline(workspace, inputs, step)
    return rows


def report(rows: list[dict[str, Any]], items: int, changed: int, total: float, load: float) -> None:
    print(f"\n{items:,} items, {changed:,} changed ({changed / items:.1%}); {os.cpu_count()} CPUs, "
          f"1-min load average {load:.1f} before the run and {os.getloadavg()[0]:.1f} after\n")
    print("| step | wall s | CPU s | peak RSS MB | fetched | embedded | reused |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        summary = row["summary"]
        fetched = summary.get("items", "") if row["step"].startswith("preprocess") else ""
        embedded = summary.get("embedded", "") if row["step"].startswith(("embed", "build_index")) else ""
        reused = summary.get("reused", "") if row["step"].startswith("build_index") else ""
        if row["step"] == "snapshot":
            fetched, reused = summary.get("to_fetch", ""), summary.get("unchanged", "")
        cells = (row["step"], f"{row['seconds']:.1f}", f"{row['cpu']:.1f}", f"{row['rss'] / 2**20:.0f}",
                 fetched, embedded, reused)
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    shards = sum(row["step"].startswith("preprocess") for row in rows)
    snapshot = rows[0]["summary"]
    final = next((row["summary"] for row in rows if row["step"] == "publish"), {})
    if "step_failed" in rows[-1]["summary"]:
        print(f"\n{rows[-1]['step']} FAILED: {rows[-1]['summary']['step_failed']}")
    print(f"\nend to end: {total:.1f} s; task instances: {len(rows) + 1} (snapshot, shards, {shards} x preprocess + embed, "
          f"build_index, evaluate, publish, deploy); nothing changed: {snapshot.get('nothing_changed')}; "
          f"published: {final.get('version', 'nothing')}; metrics: {json.dumps(final.get('metrics', {}))}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--churn", type=float, nargs="+", default=[0.01],
                        help="share of items whose image changed (0: none); several: one run each, in order, "
                             "on the same fabricated catalog")
    parser.add_argument("--scratch", help="folder for the fabricated data (default: a temporary one, removed after)")
    parser.add_argument("--serve", action="store_true", help="then fetch the new version and start a server on it")
    parser.add_argument("--logs", type=Path, help="keep each step's log in <logs>/<version>/<step>.log "
                                                   "(default: removed with the fabricated data)")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=args.scratch))
    logs = args.logs or root / "logs"
    try:
        catalog, repository = fabricate(root, args.items)
        env = serving_previous(root, repository)
        published = None
        for hour, churn in enumerate(args.churn, start=1):
            changed = change(catalog, churn, hour) if churn else 0
            load, began = os.getloadavg()[0], time.perf_counter()
            rows = timed_run(catalog, repository, f"20260101T{hour:02d}0000Z", env, logs)
            report(rows, args.items, changed, time.perf_counter() - began, load)
            published = next((row["summary"]["version"] for row in rows
                              if row["step"] == "publish" and "version" in row["summary"]), published)
        if args.serve and published:
            serve(root, repository, published, logs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
