"""What every step's CLI shares: one JSON summary line, and exit codes that tell a retry may help (1), cannot (2),
or the step chose to do nothing (3)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imagesearch.errors import ImageFetchTimeoutError
from tasks import cli
from tasks.pipeline import Arg, ResourceClass, Step

DEMO = Step("demo", "a demo step", timedelta(minutes=1), ResourceClass.TINY,
            (Arg("--level", "how much", kind=int, default=3), Arg("--loud", "say more", kind=bool)))


def run(main: Any, capsys: pytest.CaptureFixture[str], *argv: str, step: Step = DEMO) -> tuple[int, str, str]:
    code = cli.run(step, main, cli.parser(step, "a demo step").parse_args(["--workspace", "/tmp/ws", *argv]))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_options_come_from_the_declaration(capsys: pytest.CaptureFixture[str]) -> None:
    def main(context: cli.StepContext) -> dict[str, Any]:
        return {"level": context.args.level, "loud": context.args.loud}

    assert json.loads(run(main, capsys)[1])["level"] == 3
    summary = json.loads(run(main, capsys, "--level", "5", "--loud")[1])
    assert (summary["level"], summary["loud"]) == (5, True)
    with pytest.raises(SystemExit):
        cli.parser(DEMO, "").parse_args(["--workspace", "w", "--level", "many"])
    sharded = Step("demo", "doc", timedelta(minutes=1), ResourceClass.TINY, sharded=True)
    assert cli.parser(sharded, "").parse_args(["--workspace", "w", "--shard", "2"]).shard == 2


def test_a_step_that_skips_when_nothing_changed_does_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "snapshot").mkdir()
    (tmp_path / "snapshot" / "run.json").write_text(json.dumps(
        {"nothing_changed": True, "serving_version": "v1", "snapshot_sha256": "a" * 64, "model_id": "b" * 64}))
    committing = Step("demo", "doc", timedelta(minutes=1), ResourceClass.TINY, skips_when_unchanged=True,
                      commits_to_git=True)

    def main(context: cli.StepContext) -> dict[str, Any]:
        raise AssertionError("ran although nothing changed")

    code = cli.run(committing, main, cli.parser(committing, "").parse_args(["--workspace", str(tmp_path)]))
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["nothing_changed"] is True and summary["changed"] is False
    assert summary["serving_version"] == "v1"


def test_a_summary_line_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    def main(context: cli.StepContext) -> dict[str, Any]:
        return {"workspace": context.args.workspace, "threads": context.settings.pipeline.torch_threads}

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
    def main(context: cli.StepContext) -> dict[str, Any]:
        raise error

    exit_code, out, err = run(main, capsys)
    assert exit_code == code and out == "" and says in err
    assert err.strip().splitlines()[-1] == f"demo failed: {error}" and "Traceback" not in err


def test_a_skipped_step_prints_its_summary_and_a_bug_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def pinned(context: cli.StepContext) -> dict[str, Any]:
        raise cli.StepSkipped("the overlay is pinned", {"version": "v1"})

    code, out, err = run(pinned, capsys)
    assert code == cli.EXIT_SKIPPED and json.loads(out) == {"step": "demo", "skipped": "the overlay is pinned",
                                                            "version": "v1"}

    def buggy(context: cli.StepContext) -> dict[str, Any]:
        return {}["missing"]

    code, _, err = run(buggy, capsys)
    assert code == cli.EXIT_PERMANENT and "Traceback" in err and err.strip().endswith("demo failed: 'missing'")
