"""The local deploy's processes: found again by pid and start time, stopped with all they started."""

from __future__ import annotations

import subprocess
import sys

import psutil

from localdev.processes import ProcessRef

# A parent that starts a child ignoring SIGTERM, prints the child's pid, then waits.
PARENT = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_process_is_its_pid_and_start_time() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        ref = ProcessRef.of(process.pid)
        assert ref.alive() and ref.find().pid == process.pid  # type: ignore[union-attr]
        recycled = ProcessRef(process.pid, ref.started - 5.0)  # the same pid, another process's start time
        assert not recycled.alive() and recycled.stop() is False
        assert process.poll() is None  # a stranger with our old pid is left alone
    finally:
        process.kill()
        process.wait()
    assert not ref.alive()


def test_stop_ends_the_process_and_what_it_started() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    ref = ProcessRef.of(parent.pid)
    assert ref.stop(grace_s=2.0) is True  # the child ignores SIGTERM: killed after the grace period
    assert parent.wait(timeout=10) is not None
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
    assert ref.stop() is False  # nothing left to stop
