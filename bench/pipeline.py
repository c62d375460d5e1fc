"""An hourly incremental run at scale: a committed version of N items, C of them changed, timed step by step.

    PYTHONPATH=. .venv/bin/python bench/pipeline.py --items 1000000 --churn 0.01

Fabricates, untimed, in a scratch folder: N small generated PNG images and a catalog of them; a committed
previous version of those N items whose vectors are consistent with the images (each image is one of 512
generated patterns plus a mark unique to the item; its vector is the pattern's real embedding plus noise
of cos ~0.9, so nothing of the N needs embedding); a GitOps repo whose overlay serves that version. Then
it replaces the images of ``churn * N`` items (new bytes, a later ``updated_at``) and times a real run: every
step a subprocess with its pod argv, in the DAG's order, as the local runner runs them (deploy included).
Prints, per step: wall time, peak RSS (the step process's own ``ru_maxrss``), images fetched, embedded and
reused, and the task instances the DAG would run. Never run as a test.
"""

from __future__ import annotations

import argparse
import hashlib
import io
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
from imagesearch.artifacts import Manifest, publish, seal
from imagesearch.catalog import CatalogItem, read_catalog, serialize_catalog
from imagesearch.embedder import Embedder, l2_normalize
from imagesearch.index_store import EMBEDDINGS, ITEMS, write_items, write_vectors
from imagesearch.input_policy import InputPolicy
from imagesearch.repository import open_repository
from imagesearch.settings import PROJECT_ROOT, Settings
from imagesearch.stamps import image_stamps
from tasks.snapshot import snapshot_sha256
from tasks.steps import step_argv

PATTERNS = 512
SIDE = 64
PREVIOUS = "20260101T000000Z"
CURRENT = "20260101T010000Z"
CHUNK = 50_000
CATEGORIES = ("shoes", "bags", "shirts", "dresses", "toys", "books", "lamps", "chairs", "mugs", "watches")


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
    image = pattern(base)
    image[0, :8] = np.frombuffer(item.to_bytes(24, "big"), np.uint8).reshape(8, 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def write_images(task: tuple[Path, int, int, int]) -> list[str]:
    """Write items [start, stop) (with pattern offset ``shift``); their sha256s."""
    folder, start, stop, shift = task
    hashes = []
    for item in range(start, stop):
        data = item_image(item, (item + shift) % PATTERNS)
        path = folder / f"{item // 10_000:03d}" / f"{item:07d}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        hashes.append(hashlib.sha256(data).hexdigest())
    return hashes


def parallel_images(folder: Path, items: list[int] | range, shift: int) -> list[str]:
    ranges = [(folder, start, min(start + CHUNK, len(items)), shift) for start in range(0, len(items), CHUNK)]
    if isinstance(items, range):
        with ProcessPoolExecutor(max_workers=2) as pool:
            return [sha for part in pool.map(write_images, ranges) for sha in part]
    return [sha for item in items for sha in write_images((folder, item, item + 1, shift))]


def fabricate(root: Path, count: int) -> tuple[Path, Path]:
    """(catalog, model repository with the committed previous version)."""
    images = root / "images"
    images.mkdir(parents=True)
    began = time.perf_counter()
    hashes = parallel_images(images, range(count), 0)
    print(f"fabricated {count} images in {time.perf_counter() - began:.0f}s", file=sys.stderr, flush=True)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    items = [CatalogItem(f"item-{item:07d}", str(images / f"{item // 10_000:03d}" / f"{item:07d}.png"),
                         f"listing {item}", CATEGORIES[item % len(CATEGORIES)], float(5 + item % 200), item % 7 == 0, moment)
             for item in range(count)]
    catalog = root / "catalog.csv"
    catalog.write_bytes(serialize_catalog(items, "csv"))

    embedder = Embedder()
    base = embedder.embed_many([embedder.preprocess(item_image(0, index)) for index in range(PATTERNS)], 8)
    image_policy = InputPolicy.for_images(Settings.from_env(), str(catalog))
    records = [item.to_record() for item in read_catalog(str(catalog), InputPolicy(local_roots=(root,))).items]
    for record, stamp, sha in zip(records, image_stamps([r["image_uri"] for r in records], image_policy), hashes, strict=True):
        record["image_stamp"], record["image_sha256"] = stamp, sha
    version = root / "build" / PREVIOUS
    version.mkdir(parents=True)
    write_items(version / ITEMS, records)
    rng = np.random.default_rng(0)

    def chunks():  # the vectors, fabricated chunk by chunk
        for start in range(0, count, CHUNK):
            rows = np.arange(start, min(start + CHUNK, count))
            noise = rng.normal(0, 0.0135, (len(rows), embedder.dim)).astype(np.float32)
            yield l2_normalize(base[rows % PATTERNS] + noise)

    write_vectors(version / EMBEDDINGS, chunks(), (count, embedder.dim))
    seal(version, Manifest(version=PREVIOUS, created_at=moment.isoformat(), item_count=count,
                           model=embedder.info, catalog={"uri": str(catalog), "snapshot_sha256": snapshot_sha256(records)}))
    repository = root / "models"
    publish(open_repository(str(repository)), version)
    shutil.rmtree(root / "build")
    return catalog, repository


def change(catalog: Path, churn: float) -> int:
    """Give ``churn`` of the items new image bytes (another pattern) and a later updated_at; how many."""
    items = read_catalog(str(catalog)).items
    changed = np.sort(np.random.default_rng(1).choice(len(items), round(len(items) * churn), replace=False)).tolist()
    images = Path(items[0].image_uri).parent.parent
    parallel_images(images, changed, PATTERNS // 2)
    for row in changed:
        item = items[row]
        items[row] = CatalogItem(**{**item.__dict__, "updated_at": item.updated_at + timedelta(hours=1)})
    catalog.write_bytes(serialize_catalog(items, "csv"))
    return len(changed)


def serve(root: Path, repository: Path, version: str) -> None:
    """Serving the new version: the fetcher's time and peak RSS, then the server's time to ready and its RSS."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "IMAGESEARCH_MODEL_REPOSITORY": str(repository)}
    index_dir = root / "serving-index"
    fetched, fetch_rss, _ = run_step(["python", "-m", "serving.fetch", "--version", version, "--repository",
                                      str(repository), "--index-dir", str(index_dir)], env)
    began = time.perf_counter()
    process, _ = start_server(index_dir, 16, root / "server.log")
    ready = time.perf_counter() - began
    status = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines() if ":" in line)
    process.terminate()
    process.wait(30)
    size = sum(path.stat().st_size for path in index_dir.rglob("*") if path.is_file())
    print(f"\nserving {version} ({size / 2**30:.2f} GiB): fetch {fetched:.1f} s (peak RSS {fetch_rss / 2**20:.0f} MB); "
          f"server ready in {ready:.1f} s, RSS {status['VmRSS'].strip()} (peak {status['VmHWM'].strip()})")


def run_step(argv: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, Any]]:
    """(wall seconds, peak RSS bytes of the step process, summary) of one step run as the local runner runs it."""
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, *argv[1:]], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage, peak RSS included
        process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    print(f"{argv[2]} {' '.join(argv[5:7])}: {elapsed:.1f}s", file=sys.stderr, flush=True)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return elapsed, usage.ru_maxrss * 1024, json.loads(stdout.strip().splitlines()[-1])


def timed_run(root: Path, catalog: Path, repository: Path) -> list[dict[str, Any]]:
    workspace = str(repository / "runs" / CURRENT)
    config = gitops.GitOpsConfig(url=str(root / "gitops.git"))
    gitops.bootstrap(config, model_repository=str(repository))
    gitops.bump(config, PREVIOUS, open_repository(str(repository)))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "IMAGESEARCH_GITOPS_REPO_URL": config.url,
           "IMAGESEARCH_MODEL_REPOSITORY": str(repository),
           # The input policy reads catalogs (and their images) only under allowed roots: the bench's scratch folder.
           "IMAGESEARCH_CATALOG_PREFIXES": str(root)}
    rows = []

    def step(name: str, *options: str, shard: int | None = None) -> dict[str, Any]:
        seconds, rss, summary = run_step(step_argv(name, workspace, *options, shard=shard), env)
        rows.append({"step": name if shard is None else f"{name} [{shard}]", "seconds": seconds, "rss": rss,
                     "summary": summary})
        return summary

    common = ("--repository", str(repository))
    snapshot = step("snapshot", "--catalog", str(catalog), *common, "--version", CURRENT)
    for shard in snapshot["shard_ids"]:
        step("preprocess", *common, shard=shard)
        step("embed", *common, "--device", "auto", shard=shard)
    for name in ("build_index", "evaluate", "publish", "deploy"):
        step(name, *(common if name in ("publish", "deploy") else ()))
    return rows


def report(rows: list[dict[str, Any]], items: int, changed: int, total: float) -> None:
    print(f"\n{items:,} items, {changed:,} changed ({changed / items:.1%}); 2-core CPU\n")
    print("| step | wall s | peak RSS MB | fetched | embedded | reused |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        summary = row["summary"]
        fetched = summary.get("items", "") if row["step"].startswith("preprocess") else ""
        embedded = summary.get("embedded", "") if row["step"].startswith(("embed", "build_index")) else ""
        reused = summary.get("reused", "") if row["step"].startswith("build_index") else ""
        if row["step"] == "snapshot":
            fetched, reused = summary["to_fetch"], summary["unchanged"]
        print(f"| {row['step']} | {row['seconds']:.1f} | {row['rss'] / 2**20:.0f} | {fetched} | {embedded} | {reused} |")
    shards = sum(row["step"].startswith("preprocess") for row in rows)
    snapshot = rows[0]["summary"]
    final = rows[-2]["summary"]
    print(f"\nend to end: {total:.1f} s; task instances: {len(rows) + 1} (snapshot, shards, {shards} x preprocess + embed, "
          f"build_index, evaluate, publish, deploy); nothing changed: {snapshot['nothing_changed']}; "
          f"published: {final.get('version', 'nothing')}; metrics: {json.dumps(final.get('metrics', {}))}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--churn", type=float, default=0.01, help="share of items whose image changed (0: none)")
    parser.add_argument("--scratch", help="folder for the fabricated data (default: a temporary one, removed after)")
    parser.add_argument("--serve", action="store_true", help="then fetch the new version and start a server on it")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir=args.scratch))
    try:
        catalog, repository = fabricate(root, args.items)
        changed = change(catalog, args.churn) if args.churn else 0
        began = time.perf_counter()
        rows = timed_run(root, catalog, repository)
        report(rows, args.items, changed, time.perf_counter() - began)
        if args.serve and "version" in rows[-2]["summary"]:
            serve(root, repository, rows[-2]["summary"]["version"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
