"""What every step CLI shares: common flags, one JSON summary line on stdout, clear failures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from imagesearch.errors import ImageSearchError
from imagesearch.settings import Settings, SettingsError


class StepFailed(ImageSearchError):
    """A step refuses to go on (a gate failed, inputs are unusable); the message says why."""


def parser(step: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{step}", description=description)
    parser.add_argument("--workspace", required=True, help="run workspace URI (local path, file:// or gs://)")
    return parser


def run(step: str, main: Callable[[argparse.Namespace, Settings], dict[str, Any]], args: argparse.Namespace) -> int:
    """Run a step: summary JSON on stdout and exit 0, or a one-line error on stderr and exit 1."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {step} %(levelname)s %(message)s", stream=sys.stderr)
    began = time.perf_counter()
    try:
        summary = main(args, Settings.from_env())
    except (ImageSearchError, SettingsError, ValueError, OSError) as exc:
        print(f"{step} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    summary = {"step": step, "seconds": round(time.perf_counter() - began, 3), **summary}
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


def progress(step: str, done: int, total: int, every: int = 1) -> None:
    if total and (done == total or done % every == 0):
        logging.getLogger(step).info("progress %d/%d (%.0f%%)", done, total, 100 * done / total)
