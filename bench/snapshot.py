"""The snapshot step's work at scale, phase by phase: this tree's code, and with ``--baseline REV`` that revision's
code in the same run, on the same fabricated catalog and previous version.

    PYTHONPATH=. .venv/bin/python bench/snapshot.py --items 1000000 --churn 0.01 --baseline 42f3354

Fabricates, untimed, under ``--scratch``: N image files (hard links to one small file per folder of 10,000, so N paths
cost few inodes and each is a real file to lstat), a CSV catalog of them, and the previous version's
``items.parquet`` with every item's stamp; ``--churn`` of the items get a later ``updated_at``. Each code then runs
in its own process (launched by ``bench.rusage``, so the peak RSS is its own): parse (read and validate the
catalog), dedup, stamp, hash, previous (read the previous items' change columns), classify and plan (write
``snapshot/items.parquet`` and the work shards). Prints seconds per phase, the peak RSS after it, and the load.
Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER_FILES = 10_000
PHASES = ("parse", "dedup", "stamp", "hash", "previous", "classify", "plan")
UPDATED = "2026-01-01T00:00:00+00:00"
LATER = "2026-01-02T00:00:00+00:00"
SHARD_SIZE, MAX_SHARDS = 5000, 32  # the settings' defaults


def image_uri(images: Path, item: int) -> str:
    return f"{images}/{item // FOLDER_FILES:05d}/{item:08d}.png"


def link_folder(task: tuple[Path, int, int]) -> str:
    """A folder's images, hard links to one file of its own (a file takes at most 65,000 links); their stamp."""
    images, start, end = task
    folder = Path(image_uri(images, start)).parent
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / "original.bin"
    if not original.exists():
        original.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    for item in range(start, end):
        path = image_uri(images, item)
        if not os.path.exists(path):
            os.link(original, path)
    info = original.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def fabricate(scratch: Path, count: int, churn: float) -> tuple[Path, Path, Path]:
    """(catalog, previous items.parquet, the image root); the images are kept between runs."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    images = scratch / "images"
    images.mkdir(parents=True, exist_ok=True)
    tasks = [(images, start, min(start + FOLDER_FILES, count)) for start in range(0, count, FOLDER_FILES)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        folder_stamps = list(pool.map(link_folder, tasks, chunksize=16))
    rows = np.arange(count)
    ids = pc.binary_join_element_wise("item-", pa.array(np.char.zfill(rows.astype(str), 8)), "")
    folders = np.char.zfill((rows // FOLDER_FILES).astype(str), 5)
    uris = pc.binary_join_element_wise(f"{images}/", pa.array(folders), "/", pa.array(np.char.zfill(rows.astype(str), 8)),
                                       ".png", "")
    changed = np.random.default_rng(0).random(count) < churn
    catalog = pa.table({
        "item_id": ids, "image_uri": uris, "title": pc.binary_join_element_wise("listing ", ids, ""),
        "category": pa.array(np.array(["shoes", "bags", "shirts", "lamps", "mugs"])[rows % 5]),
        "price": pa.array((5 + rows % 200).astype(np.float64)), "on_sale": pa.array(rows % 7 == 0),
        "updated_at": pa.array(np.where(changed, LATER, UPDATED)),
    })
    catalog_path = scratch / f"catalog-{count}.csv"
    pcsv.write_csv(catalog, catalog_path, pcsv.WriteOptions(quoting_style="none"))
    previous = pa.table({"item_id": ids, "image_uri": uris, "updated_at": pa.repeat(UPDATED, count),
                         "image_stamp": pa.array(np.array(folder_stamps)[rows // FOLDER_FILES]),
                         "image_sha256": pa.repeat("ab" * 32, count)})
    previous_path = scratch / f"previous-{count}.parquet"
    pq.write_table(previous, previous_path)
    return catalog_path, previous_path, images


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phases(catalog: Path, previous_path: Path, images: Path, workspace_dir: Path) -> list[dict[str, Any]]:
    """Every phase of the code on sys.path, timed; the columnar code if it has ``stamp_column``, else the per-row code."""
    import pyarrow.parquet as pq

    from imagesearch import stamps
    from imagesearch.catalog import read_catalog
    from imagesearch.input_policy import InputPolicy
    from tasks import plan
    from tasks.previous import CHANGE_COLUMNS, PreviousVersion
    from tasks.steps.snapshot import deduplicate
    from tasks.workspace import Workspace

    policy = InputPolicy(local_roots=(images.parent,))
    columnar = hasattr(stamps, "stamp_column")
    state: dict[str, Any] = {}
    timings: list[dict[str, Any]] = []

    def timed(name: str, work: Callable[[], None]) -> None:
        began = time.perf_counter()
        work()
        timings.append({"phase": name, "seconds": time.perf_counter() - began, "peak_rss_mb": peak_rss_mb()})

    def parse() -> None:
        state["catalog"] = read_catalog(str(catalog), policy)

    def dedup() -> None:
        if columnar:
            items, _ = deduplicate(state.pop("catalog").table)
            state["items"] = items.drop_columns(["updated_us"])
        else:
            items, _ = deduplicate(state.pop("catalog").items)
            state["items"] = [item.to_record() for item in items]

    def stamp() -> None:
        items = state["items"]
        if columnar:
            state["items"] = items.append_column("image_stamp", stamps.stamp_column(items.column("image_uri"), policy))
        else:
            for record, value in zip(items, stamps.image_stamps([r["image_uri"] for r in items], policy), strict=True):
                record["image_stamp"] = value

    def hash_snapshot() -> None:
        state["hash"] = plan.snapshot_sha256(state["items"])

    def previous() -> None:
        table = pq.read_table(previous_path, columns=list(CHANGE_COLUMNS))
        if columnar:
            state["previous"] = PreviousVersion(None, table)  # type: ignore[arg-type]
        else:
            columns = table.to_pydict()
            state["previous"] = PreviousVersion(None, columns,  # type: ignore[arg-type, call-arg]
                                                {item_id: row for row, item_id in enumerate(columns["item_id"])})

    def classify() -> None:
        state["changes"] = plan.classify(state["items"], state["previous"])
        if not columnar:  # the step's count of removed items, which Changes carries in the columnar code
            ids = {record["item_id"] for record in state["items"]}
            state["removed"] = len(state["previous"].row_of.keys() - ids)

    def write() -> None:
        workspace = Workspace(str(workspace_dir))
        if columnar:
            state["shards"] = plan.write_plan(workspace, state["items"], state["changes"], SHARD_SIZE, MAX_SHARDS)
        else:
            state["shards"] = plan.write_plan(workspace, state["items"], state["changes"], state["previous"],
                                              SHARD_SIZE, MAX_SHARDS)

    for name, work in zip(PHASES, (parse, dedup, stamp, hash_snapshot, previous, classify, write), strict=True):
        timed(name, work)
    work = state["changes"].work if columnar else sum(row < 0 for row in state["changes"])
    timings.append({"phase": "summary", "to_fetch": int(work), "shards": len(state["shards"])})
    return timings


def run_code(name: str, code_root: Path, catalog: Path, previous: Path, images: Path, scratch: Path) -> dict[str, Any]:
    out = scratch / f"{name}.json"
    usage = scratch / f"{name}-rusage.json"
    workspace = scratch / f"workspace-{name}"
    shutil.rmtree(workspace, ignore_errors=True)
    argv = [sys.executable, "-m", "bench.rusage", str(usage), "--", sys.executable, str(Path(__file__).resolve()),
            "--worker", str(out), str(catalog), str(previous), str(images), str(workspace)]
    environment = {**os.environ, "PYTHONPATH": f"{code_root}{os.pathsep}{ROOT}"}
    subprocess.run(argv, check=True, env=environment, cwd=ROOT)  # bench.rusage is found in ROOT, the code in code_root
    return {"phases": json.loads(out.read_text()), "rusage": json.loads(usage.read_text()), "workspace": workspace}


def same_plan(first: Path, second: Path) -> bool:
    """Both runs wrote the same snapshot/items.parquet rows and byte-identical work shards."""
    import pyarrow.parquet as pq

    plans = [pq.read_table(workspace / "snapshot" / "items.parquet").to_pylist() for workspace in (first, second)]
    shards = [sorted(workspace.glob("shards/*/items.jsonl")) for workspace in (first, second)]
    return plans[0] == plans[1] and [path.read_bytes() for path in shards[0]] == [path.read_bytes() for path in shards[1]]


def baseline_tree(rev: str, scratch: Path) -> Path:
    tree = scratch / f"baseline-{rev}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def report(results: dict[str, dict[str, Any]], items: int, churn: float, load: str) -> None:
    names = list(results)
    print(f"\nsnapshot of {items:,} items, {churn:.2%} changed; load average before: {load}")
    print(f"{'phase':<10}" + "".join(f"{name + ' s':>14}{name + ' peak MB':>20}" for name in names))
    for phase in PHASES:
        line = f"{phase:<10}"
        for name in names:
            row = next(row for row in results[name]["phases"] if row["phase"] == phase)
            line += f"{row['seconds']:>14.1f}{row['peak_rss_mb']:>20.0f}"
        print(line)
    line = f"{'total':<10}"
    for name in names:
        usage = results[name]["rusage"]
        line += f"{usage['seconds']:>14.1f}{usage['peak_rss_bytes'] / 2**20:>20.0f}"
    print(line + "   (the whole process: start, imports and exit included)")
    for name in names:
        summary = results[name]["phases"][-1]
        print(f"{name}: {summary['to_fetch']:,} to fetch in {summary['shards']} shard(s)")
    if len(names) == 2:
        print(f"the same plan and shards: {same_plan(*(results[name]['workspace'] for name in names))}")


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments and arguments[0] == "--worker":
        out, catalog, previous, images, workspace = (Path(value) for value in arguments[1:6])
        out.write_text(json.dumps(phases(catalog, previous, images, workspace)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--churn", type=float, default=0.0, help="the share of items with a later updated_at")
    parser.add_argument("--baseline", help="a git revision whose code runs too, in the same run")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "bench-snapshot")
    args = parser.parse_args(arguments)
    args.scratch.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    catalog, previous, images = fabricate(args.scratch, args.items, args.churn)
    print(f"fabricated {args.items:,} items in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    codes = {"baseline": baseline_tree(args.baseline, args.scratch)} if args.baseline else {}
    codes["columnar"] = ROOT
    results = {name: run_code(name, root, catalog, previous, images, args.scratch) for name, root in codes.items()}
    report(results, args.items, args.churn, load)


if __name__ == "__main__":
    main()
