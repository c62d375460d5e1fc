"""Run the pipeline on one machine: every step of ``tasks.pipeline`` in order, each a subprocess with its pod argv.

    python -m tasks.operations.run_all --catalog data/catalogs/tuxpaint/catalog.csv [--no-deploy] [--limit 100]

The options are the DAG's trigger form (defaults from settings), plus the model repository and the version.
Like the DAG, it publishes and commits the version to the GitOps repo unless told not to, and a step that
exits 3 (e.g. a commit to a pinned overlay) is skipped, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from imagesearch.manifest import new_version
from imagesearch.repository import open_repository
from imagesearch.settings import Settings, get_settings
from tasks.cli import EXIT_SKIPPED
from tasks.pipeline import PARAMS, REPOSITORY, SERVING_OVERLAY, VERSION, Inputs, Step, default_params, stages, truthy

StepRunner = Callable[[Step, list[str]], dict[str, Any]]  # runs one step's argv; its summary


def run_step(step: Step, argv: list[str]) -> dict[str, Any]:
    """Run one step (stderr streams through); its JSON summary, or SystemExit on failure."""
    began = time.perf_counter()
    print(f"==> {shlex.join(argv)}", file=sys.stderr, flush=True)
    local = [sys.executable, *argv[1:]] if argv[0] == "python" else argv
    result = subprocess.run(local, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    if result.returncode not in (0, EXIT_SKIPPED):
        raise SystemExit(f"step {step.name} failed with exit code {result.returncode}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    outcome = f"skipped: {summary.get('skipped')}" if result.returncode == EXIT_SKIPPED else "done"
    print(f"<== {step.name} {outcome} in {time.perf_counter() - began:.1f}s", file=sys.stderr, flush=True)
    return summary


def run_pipeline(workspace: str, inputs: Inputs, run: StepRunner = run_step) -> dict[str, dict[str, Any]]:
    """Every step in order (the per-shard ones once per shard the first steps wrote), as the DAG runs them; a
    step the run switched off (``enabled_by``) is left out. Each step's summary by step name (per-shard steps:
    a list)."""
    before, per_shard, after = stages()

    def argv(step: Step, shard: int | None = None) -> list[str]:
        return step.argv(workspace, step.options(inputs), step.flags(inputs), shard)

    def switched_on(step: Step) -> bool:
        return all(truthy(inputs[name]) for name in step.enabled_by)

    summaries: dict[str, Any] = {step.name: run(step, argv(step)) for step in before if switched_on(step)}
    for shard in summaries[before[-1].name]["shard_ids"]:
        for step in per_shard:
            summaries.setdefault(step.name, []).append(run(step, argv(step, shard)))
    for step in after:
        if switched_on(step):
            summaries[step.name] = run(step, argv(step))
        else:
            print(f"--- {step.name} skipped: switched off ({' and '.join(step.enabled_by)})", file=sys.stderr, flush=True)
    return summaries


def parse_args(argv: list[str] | None, settings: Settings) -> tuple[argparse.Namespace, dict[str, Any]]:
    """The options, and the run parameters (given or from settings), checked like the DAG's form checks them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for param in PARAMS:
        if param.kind is bool:
            parser.add_argument(param.flag, dest=param.name, action=argparse.BooleanOptionalAction, help=param.description)
        else:
            parser.add_argument(param.flag, dest=param.name, type=param.kind, help=param.description)
    parser.add_argument("--repository", help="model repository URI; default from settings")
    parser.add_argument("--version", default=None, help="index version to build; default: now (UTC)")
    args = parser.parse_args(argv)
    params = default_params(settings, vars(args))
    for param in PARAMS:
        value = params[param.name]
        size = len(value) if param.kind is str else value
        if (param.minimum is not None and size < param.minimum) or (param.maximum is not None and size > param.maximum):
            parser.error(f"{param.flag} {value!r} is out of range [{param.minimum}, {param.maximum}]")
    return args, params


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    args, params = parse_args(argv, settings)
    repository = open_repository(args.repository or settings.storage.model_repository)
    version = args.version or new_version()
    workspace = repository.child(f"runs/{version}").uri
    inputs = {**params, REPOSITORY: repository.uri, VERSION: version, SERVING_OVERLAY: settings.gitops.overlay}
    summaries = run_pipeline(workspace, inputs)
    nothing_changed = summaries[stages()[0][-1].name].get("nothing_changed", False)
    print(json.dumps({"version": None if nothing_changed else version, "nothing_changed": nothing_changed,
                      "steps": summaries}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
