"""The step process hook: this interpreter runs the step, its output goes to the task log, a signal is named."""

from __future__ import annotations

import sys

import pytest

from plugins.hooks.process import StepProcessHook


def test_the_hook_runs_python_as_this_interpreter_and_logs_its_output(capfd: pytest.CaptureFixture[str]) -> None:
    script = "import sys; print(sys.executable); print('to stderr', file=sys.stderr); sys.exit(3)"
    result = StepProcessHook().run(["python", "-c", script])
    assert result.returncode == 3
    assert result.tail == [sys.executable, "to stderr"]
    assert result.reason == "exit code 3: to stderr"
    logged = capfd.readouterr()
    assert "to stderr" in logged.out + logged.err  # each line went to the (task) log as it came


def test_the_hook_names_the_signal_that_killed_the_child() -> None:
    result = StepProcessHook().run(["python", "-c", "import os, signal; print('bye'); os.kill(os.getpid(), signal.SIGKILL)"])
    assert result.returncode < 0 and result.reason == "killed by SIGKILL; last output: bye"
