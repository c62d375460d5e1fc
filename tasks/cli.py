"""What every step CLI shares: common flags, one JSON summary line on stdout, clear failures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from imagesearch.errors import ImageSearchError, is_transient
from imagesearch.settings import Settings, get_settings
from imagesearch.signals import EXIT_TERMINATED, Terminated, terminate_on_sigterm
from imagesearch.text import EscapingFormatter


class StepFailed(ImageSearchError):
    """A step refuses to go on (a gate failed, inputs are unusable); the message says why.

    ``transient``: whether running the step again may succeed (images that were missing may appear).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class StepSkipped(ImageSearchError):
    """The step had nothing it may do (e.g. deploy to a pinned overlay); the message says why.

    ``summary`` is still printed as the step's JSON line; the operators turn the exit code into a skipped task.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


# Exit codes: a retry may help (a transient error: the network, a timeout, a 5xx) or cannot (a permanent one: bad
# input, a quality gate, a refused version), as imagesearch.errors.RETRY declares; or the step decided it must not
# act (the task ends as skipped).
EXIT_RETRYABLE = 1
EXIT_PERMANENT = 2
EXIT_SKIPPED = 3
EXPECTED = (ImageSearchError, OSError, ValueError)  # errors whose message says it all: no traceback


def parser(step: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{step}", description=description)
    parser.add_argument("--workspace", required=True, help="run workspace URI (local path, file:// or gs://)")
    return parser


def run(step: str, main: Callable[[argparse.Namespace, Settings], dict[str, Any]], args: argparse.Namespace) -> int:
    """Run a step: summary JSON on stdout and exit 0 (or 3 when skipped), or a one-line error on stderr and exit 1 or 2
    (143 when SIGTERM ended it)."""
    terminate_on_sigterm()
    handler = logging.StreamHandler(sys.stderr)  # one record, one line: catalog fields in a message are escaped
    handler.setFormatter(EscapingFormatter(f"%(asctime)s {step} %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    began = time.perf_counter()
    try:
        summary = main(args, get_settings())
    except StepSkipped as exc:
        print(f"{step} skipped: {exc}", file=sys.stderr, flush=True)
        print(json.dumps({"step": step, "skipped": str(exc), **exc.summary}, sort_keys=True), flush=True)
        return EXIT_SKIPPED
    except Terminated as exc:
        print(f"{step} failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    except Exception as exc:
        if not isinstance(exc, EXPECTED):  # a bug or a library's surprise: where it happened matters
            traceback.print_exc(file=sys.stderr)
        transient = is_transient(exc)
        print(f"{step}: {type(exc).__name__} is {'transient: a retry may help' if transient else 'permanent: no retry'}",
              file=sys.stderr)
        print(f"{step} failed: {exc}", file=sys.stderr, flush=True)  # last: a failed pod's termination message
        return EXIT_RETRYABLE if transient else EXIT_PERMANENT
    summary = {"step": step, "seconds": round(time.perf_counter() - began, 3), **summary}
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


def progress(step: str, done: int, total: int, every: int = 1) -> None:
    if total and (done == total or done % every == 0):
        logging.getLogger(step).info("progress %d/%d (%.0f%%)", done, total, 100 * done / total)
