"""What every step operator shares: the argv from rendered options and flags, the summary line."""

from __future__ import annotations

import pytest

from plugins.operators.command import parse_summary, truthy
from tests.plugins.local_support import local_step


def test_summary_is_the_last_json_object_line() -> None:
    lines = ["2026-01-01 snapshot INFO reading", '{"step": "snapshot", "shard_ids": [0, 1]}', "[1, 2]", "{not json}",
             "2026-01-01 snapshot INFO done"]
    assert parse_summary(lines) == {"step": "snapshot", "shard_ids": [0, 1]}
    assert parse_summary(["no summary here", "[]"]) is None


def test_truthy_reads_rendered_templates() -> None:
    assert [truthy(v) for v in ("True", "true", " 1 ", "yes", True)] == [True] * 5
    assert [truthy(v) for v in ("False", "", "0", "None", False)] == [False] * 5


def test_argv_is_built_from_rendered_options_and_flags() -> None:
    operator = local_step("snapshot", "/repo/runs/v", options={"--catalog": "c.csv", "--limit": "0", "--version": ""},
                          flags={"--full-rebuild": "True", "--on-sale-only": "False"})
    # An empty option is left out (the step's default applies); "0" is a value; a switch renders true or false.
    assert operator.step_argv() == ["python", "-m", "tasks.steps.snapshot", "--workspace", "/repo/runs/v", "--catalog", "c.csv",
                                    "--limit", "0", "--full-rebuild"]
    shard = local_step("embed", "/repo/runs/v", options={"--device": "auto"}, shard=3)
    assert shard.step_argv() == ["python", "-m", "tasks.steps.embed", "--workspace", "/repo/runs/v", "--shard", "3", "--device",
                                 "auto"]
    with pytest.raises(ValueError, match="step embed needs shard"):
        local_step("embed", "/repo/runs/v").step_argv()
    deploy = local_step("deploy", "/repo/runs/v", options={"--repository": "/repo"})
    assert deploy.step_argv()[:3] == ["python", "-m", "tasks.steps.commit_version"]  # the task keeps its name
