"""Processes the local deploy started, found again across runs and stopped with everything they started (psutil).

A pid alone is not an identity: after a restart or a crash it may belong to another program. A
:class:`ProcessRef` keeps the pid with the process's start time, so a recycled pid is never taken for ours.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import psutil

TICK_S = 0.01  # the kernel's start-time resolution (clock ticks)


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    started: float  # psutil's create_time

    @classmethod
    def of(cls, pid: int) -> ProcessRef:
        return cls(pid, psutil.Process(pid).create_time())

    def find(self) -> psutil.Process | None:
        """The running process, if it is still the one referred to (an exited child of ours is reaped)."""
        try:
            process = psutil.Process(self.pid)
            if not math.isclose(process.create_time(), self.started, abs_tol=TICK_S):
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(psutil.Error, ChildProcessError):
                    process.wait(timeout=0)
                return None
            return process
        except psutil.NoSuchProcess:
            return None

    def alive(self) -> bool:
        return self.find() is not None

    def stop(self, grace_s: float = 20.0) -> bool:
        """SIGTERM to the process and its descendants, SIGKILL to any still there after ``grace_s``; False if it was
        not running."""
        process = self.find()
        if process is None:
            return False
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = [process, *process.children(recursive=True)]
            for member in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.terminate()
            _, left = psutil.wait_procs(tree, timeout=grace_s)
            for member in left:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            psutil.wait_procs(left, timeout=5)
        return True
