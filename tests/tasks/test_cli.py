"""What every step's CLI shares: one JSON summary line, and exit codes that tell a retry may help (1), cannot (2),
or the step chose to do nothing (3)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from imagesearch.errors import ImageFetchTimeoutError
from imagesearch.settings import Settings
from tasks import cli


def run(main: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.run("demo", main, cli.parser("demo", "a demo step").parse_args(["--workspace", "/tmp/ws"]))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_summary_line_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    def main(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
        return {"workspace": args.workspace, "threads": settings.pipeline.torch_threads}

    code, out, _ = run(main, capsys)
    summary = json.loads(out)
    assert code == 0 and summary["step"] == "demo" and summary["workspace"] == "/tmp/ws" and summary["seconds"] >= 0


@pytest.mark.parametrize(("error", "code", "says"), [
    (cli.StepFailed("quality gate failed"), cli.EXIT_PERMANENT, "StepFailed is permanent: no retry"),
    (cli.StepFailed("3 of 3 images failed", transient=True), cli.EXIT_RETRYABLE, "StepFailed is transient"),
    (ImageFetchTimeoutError("deadline"), cli.EXIT_RETRYABLE, "ImageFetchTimeoutError is transient"),
])
def test_failures_end_with_one_line_and_the_right_exit_code(error: Exception, code: int, says: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def main(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
        raise error

    exit_code, out, err = run(main, capsys)
    assert exit_code == code and out == "" and says in err
    assert err.strip().splitlines()[-1] == f"demo failed: {error}" and "Traceback" not in err


def test_a_skipped_step_prints_its_summary_and_a_bug_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def pinned(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
        raise cli.StepSkipped("the overlay is pinned", {"version": "v1"})

    code, out, err = run(pinned, capsys)
    assert code == cli.EXIT_SKIPPED and json.loads(out) == {"step": "demo", "skipped": "the overlay is pinned",
                                                            "version": "v1"}

    def buggy(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
        return {}["missing"]

    code, _, err = run(buggy, capsys)
    assert code == cli.EXIT_PERMANENT and "Traceback" in err and err.strip().endswith("demo failed: 'missing'")
