"""What every step CLI shares: its options made from its :class:`~tasks.pipeline.Step`, the step context (workspace,
settings, run facts, the "nothing changed" rule), one JSON summary line on stdout, clear failures.

A step module is one function ``def step(context: StepContext) -> dict`` (its summary) and
``main = cli.entry("<module>", step, __doc__)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from imagesearch.errors import ImageSearchError, is_transient
from imagesearch.repository import ModelRepository, open_model_repository
from imagesearch.settings import Settings, get_settings
from imagesearch.signals import EXIT_TERMINATED, Terminated, terminate_on_sigterm
from imagesearch.text import EscapingFormatter
from tasks import unchanged
from tasks.pipeline import STEP, Step
from tasks.workspace import Workspace


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


@dataclass
class StepContext:
    """What a step starts from: its parsed options, the settings, the run workspace and the run facts snapshot wrote."""

    step: Step
    args: argparse.Namespace
    settings: Settings

    @cached_property
    def workspace(self) -> Workspace:
        return Workspace(self.args.workspace, self.settings.storage.repository_retry_s)

    @cached_property
    def run(self) -> dict[str, Any]:
        """The run facts (``snapshot/run.json``): version, catalog, model, shard count, previous version..."""
        return self.workspace.run_info()

    @property
    def shard(self) -> int:
        return self.args.shard

    def repository(self) -> ModelRepository:
        """The model repository ``--repository`` names (default: settings')."""
        return open_model_repository(self.settings, self.args.repository)

    def nothing_changed(self) -> dict[str, Any] | None:
        """The step's summary when the run has nothing to do and the step skips then (``skips_when_unchanged``)."""
        if not self.step.skips_when_unchanged or (summary := unchanged.summary(self.run, self.step.program)) is None:
            return None
        return {**summary, "changed": False} if self.step.commits_to_git else summary  # no commit: no rollout


StepMain = Callable[[StepContext], dict[str, Any]]


def parser(step: Step, description: str) -> argparse.ArgumentParser:
    """The step's command line, from its declaration: ``--workspace``, ``--shard`` when sharded, then its args."""
    parser = argparse.ArgumentParser(prog=" ".join(step.command), description=description)
    parser.add_argument("--workspace", required=True, help="run workspace URI (local path, file:// or gs://)")
    if step.sharded:
        parser.add_argument("--shard", type=int, required=True, help="the work shard to process")
    for arg in step.args:
        if arg.switch:
            parser.add_argument(arg.flag, action="store_true", help=arg.help)
        else:
            parser.add_argument(arg.flag, type=arg.kind, default=arg.default, help=arg.help)
    return parser


def entry(program: str, main: StepMain, description: str | None) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of the step whose module is ``tasks.<program>``."""
    step = next(step for step in STEP.values() if step.program == program)

    def cli_main(argv: list[str] | None = None) -> int:
        return run(step, main, parser(step, description or "").parse_args(argv))

    return cli_main


def run(step: Step, main: StepMain, args: argparse.Namespace) -> int:
    """Run a step: summary JSON on stdout and exit 0 (or 3 when skipped), or a one-line error on stderr and exit 1 or 2
    (143 when SIGTERM ended it)."""
    name = step.program
    terminate_on_sigterm()
    handler = logging.StreamHandler(sys.stderr)  # one record, one line: catalog fields in a message are escaped
    handler.setFormatter(EscapingFormatter(f"%(asctime)s {name} %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    began = time.perf_counter()
    try:
        context = StepContext(step, args, get_settings())
        summary = context.nothing_changed() or main(context)
        # Inside the try: a SIGTERM arriving while the summary is written still ends the step as terminated (143).
        print(json.dumps({"step": name, "seconds": round(time.perf_counter() - began, 3), **summary}, sort_keys=True),
              flush=True)
    except StepSkipped as exc:
        print(f"{name} skipped: {exc}", file=sys.stderr, flush=True)
        print(json.dumps({"step": name, "skipped": str(exc), **exc.summary}, sort_keys=True), flush=True)
        return EXIT_SKIPPED
    except Terminated as exc:
        print(f"{name} failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    except Exception as exc:
        if not isinstance(exc, EXPECTED):  # a bug or a library's surprise: where it happened matters
            traceback.print_exc(file=sys.stderr)
        transient = is_transient(exc)
        print(f"{name}: {type(exc).__name__} is {'transient: a retry may help' if transient else 'permanent: no retry'}",
              file=sys.stderr)
        print(f"{name} failed: {exc}", file=sys.stderr, flush=True)  # last: a failed pod's termination message
        return EXIT_RETRYABLE if transient else EXIT_PERMANENT
    return 0


def progress(step: str, done: int, total: int, every: int = 1) -> None:
    if total and (done == total or done % every == 0):
        logging.getLogger(step).info("progress %d/%d (%.0f%%)", done, total, 100 * done / total)
