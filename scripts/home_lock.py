"""One user of a local AIRFLOW_HOME at a time: ``serve`` and ``dags-test`` each hold its lock while they run.

`airflow dags test` runs a DAG in its own process against the metadata DB; a scheduler on that same DB
treats the test's running tasks as its own and fails or skips them. So whoever comes second is refused
with a message naming who holds the home. The lock is an ``flock`` on ``<home>/imagesearch.lock``: the
kernel releases it when the holder and every child it passed the descriptor to have exited, however
they exit, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_FILE = "imagesearch.lock"


class HomeInUse(RuntimeError):
    pass


class HomeLock:
    def __init__(self, home: Path, holder: str) -> None:
        self.path = home / LOCK_FILE
        self.holder = holder  # what the refused command is told, e.g. "make airflow (serve)"
        self._file: IO[str] | None = None

    def __enter__(self) -> HomeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise HomeInUse(
                f"{self.path.parent} is in use by {holder}: a scheduler and `airflow dags test` must not share one "
                "metadata database (the scheduler would fail or skip the test run's tasks). Stop it first, or use "
                "another home (--home, IMAGESEARCH_AIRFLOW_HOME for make airflow, IMAGESEARCH_AIRFLOW_DEMO_HOME for "
                "make demo)."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{self.holder}, pid {os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def fileno(self) -> int:
        """The lock's file descriptor: a child given it (``pass_fds``) holds the lock as long as it lives."""
        assert self._file is not None, "the lock is not held"
        return self._file.fileno()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None
