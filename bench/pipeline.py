"""End-to-end pipeline time on the demo catalog: full build vs incremental (nothing changed; 1 % changed).

    PYTHONPATH=. .venv/bin/python bench/pipeline.py

Runs ``tasks.run_all`` (every step as a subprocess, as the DAG's local mode does) three times against a
fresh model repository in a temporary folder: a full build, the same catalog again, and the catalog with
1 % of its images replaced (mirrored). Never run as a test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from imagesearch.catalog import read_catalog, serialize_catalog
from imagesearch.settings import DATA_DIR, PROJECT_ROOT

CATALOG = DATA_DIR / "catalogs" / "tuxpaint" / "catalog.csv"


def run(catalog: Path, repository: Path, version: str) -> tuple[float, dict]:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tasks.run_all", "--catalog", str(catalog), "--repository", str(repository),
                             "--version", version], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - began
    workspace = repository / "runs" / version
    embedded = reused = 0
    for path in sorted(workspace.glob("preprocess/*/items.jsonl")):
        for line in path.read_text().splitlines():
            status = json.loads(line)["status"]
            embedded += status == "embed"
            reused += status == "reuse"
    return elapsed, {"embedded": embedded, "reused": reused}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as scratch:
        root = Path(scratch)
        repository = root / "models"
        items = read_catalog(str(CATALOG)).items
        changed_dir = root / "changed"
        changed_dir.mkdir()
        step = max(1, len(items) // max(1, round(len(items) * 0.01)))
        changed = []
        for position, item in enumerate(items):
            if position % step == 0 and len(changed) < round(len(items) * 0.01):
                target = changed_dir / f"{item.item_id}.png"
                ImageOps.mirror(Image.open(item.image_uri)).save(target)
                item = item.__class__(**{**item.__dict__, "image_uri": str(target)})
                changed.append(item.item_id)
            items[position] = item
        changed_catalog = root / "catalog-changed.csv"
        changed_catalog.write_bytes(serialize_catalog(items, "csv"))

        rows = [
            ("full build", *run(CATALOG, repository, "20260101T000000Z")),
            ("incremental, nothing changed", *run(CATALOG, repository, "20260101T010000Z")),
            (f"incremental, 1 % changed ({len(changed)} images)", *run(changed_catalog, repository, "20260101T020000Z")),
        ]
        shutil.rmtree(repository, ignore_errors=True)
    print(f"demo catalog: {len(items)} items ({CATALOG})\n")
    print("| run | wall s | images embedded | embeddings reused |")
    print("|---|---|---|---|")
    for name, seconds, counts in rows:
        print(f"| {name} | {seconds:.1f} | {counts['embedded']} | {counts['reused']} |")


if __name__ == "__main__":
    main()
