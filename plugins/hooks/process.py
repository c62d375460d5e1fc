"""A step's argv run as a local child process: output streamed to the task log, the child killed on demand.

``python`` as the program means this interpreter (the venv's), so a subprocess runs exactly what a pod
runs with the task image's ``python``. The child gets its own process group, so terminating it also
stops anything it started.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk import BaseHook

from imagesearch.settings import PROJECT_ROOT

TAIL_LINES = 200


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    tail: list[str]  # the last output lines (stdout and stderr, interleaved as written)

    @property
    def reason(self) -> str:
        """Why the process failed, for the task's error: its last output line and how it ended."""
        last = next((line for line in reversed(self.tail) if line.strip()), "no output")
        if self.returncode < 0:
            return f"killed by {signal.Signals(-self.returncode).name}; last output: {last}"
        return f"exit code {self.returncode}: {last}"


class StepProcessHook(BaseHook):
    hook_name = "Local step process"

    def __init__(self, cwd: Path = PROJECT_ROOT, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None

    def get_conn(self) -> subprocess.Popen[str] | None:
        return self.process

    @staticmethod
    def local_argv(argv: list[str]) -> list[str]:
        return [sys.executable, *argv[1:]] if argv and argv[0] == "python" else list(argv)

    def environment(self) -> dict[str, str]:
        """This process's environment, with the project importable and the child's output unbuffered."""
        path = os.pathsep.join(p for p in (str(self.cwd), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}

    def run(self, argv: list[str]) -> ProcessResult:
        """Run to completion, logging each output line as it comes."""
        command = self.local_argv(argv)
        self.log.info("running %s", shlex.join(command))
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.process = process = subprocess.Popen(
            command, cwd=self.cwd, env=self.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="backslashreplace", bufsize=1, start_new_session=True,
        )
        output = process.stdout or ()
        try:
            for line in output:
                line = line.rstrip("\n")
                tail.append(line)
                self.log.info("%s", line)
            returncode = process.wait()
        except BaseException:
            # A timeout or a kill signal interrupted the wait: never leave the child running.
            self.terminate()
            raise
        finally:
            if process.stdout is not None:
                process.stdout.close()
        self.log.info("exited with code %d", returncode)
        return ProcessResult(returncode, list(tail))

    def terminate(self, grace_s: float = 10.0) -> None:
        """SIGTERM the child's process group; SIGKILL whatever of it is left after ``grace_s``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.log.warning("terminating process group %d", process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
        with contextlib.suppress(ProcessLookupError):  # the group outlives its leader while a member is alive
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
