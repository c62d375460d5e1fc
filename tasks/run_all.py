"""Run every step in order on one machine, each as a subprocess with its pod argv.

    python -m tasks.run_all --catalog data/catalogs/tuxpaint/catalog.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from imagesearch.artifacts import new_version
from imagesearch.repository import open_repository
from imagesearch.settings import Settings
from tasks.steps import flag, option, step_argv


def run_step(argv: list[str]) -> dict[str, Any]:
    """Run one step (stderr streams through); its JSON summary, or SystemExit on failure."""
    began = time.perf_counter()
    print(f"==> {' '.join(argv)}", file=sys.stderr, flush=True)
    local = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
    result = subprocess.run(local, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    if result.returncode != 0:
        raise SystemExit(f"step {argv[2]} failed with exit code {result.returncode}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"<== {argv[2]} done in {time.perf_counter() - began:.1f}s", file=sys.stderr, flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", help="catalog URI; default from settings")
    parser.add_argument("--repository", help="model repository URI; default from settings")
    parser.add_argument("--version", default=None)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--full-rebuild", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    repository = args.repository or settings.model_repository
    version = args.version or new_version()
    workspace = open_repository(repository).child(f"runs/{version}").uri
    common = option("--repository", args.repository)
    snapshot = run_step(step_argv("snapshot", workspace, *option("--catalog", args.catalog), *common,
                                  "--version", version, *option("--limit", args.limit),
                                  *flag("--full-rebuild", args.full_rebuild)))
    for shard in snapshot["shard_ids"]:
        run_step(step_argv("preprocess", workspace, *common, *flag("--full-rebuild", args.full_rebuild), shard=shard))
        run_step(step_argv("embed", workspace, *common, shard=shard))
    run_step(step_argv("build_index", workspace))
    evaluation = run_step(step_argv("evaluate", workspace))
    published = run_step(step_argv("publish", workspace, *common))
    if snapshot["nothing_changed"]:
        print(json.dumps({"version": None, "nothing_changed": True, "message": published["message"]}, indent=2))
        return 0
    print(json.dumps({"version": version, "metrics": evaluation["metrics"], "published": published,
                      "fetched": snapshot["to_fetch"], "reused": snapshot["unchanged"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
