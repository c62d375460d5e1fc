"""SIGTERM unwinds a command like Ctrl-C: ``finally`` blocks run and the exit code says it was terminated."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from imagesearch.signals import EXIT_TERMINATED

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import sys, time
from imagesearch.signals import EXIT_TERMINATED, Terminated, terminate_on_sigterm
terminate_on_sigterm()
try:
    try:
        print("ready", flush=True)
        time.sleep(60)
    except Exception:
        print("swallowed", flush=True)
    finally:
        print("cleaned up", flush=True)
except Terminated as exc:
    print(exc, flush=True)
    sys.exit(EXIT_TERMINATED)
"""


def test_sigterm_runs_the_cleanups_and_exits_143() -> None:
    process = subprocess.Popen([sys.executable, "-c", PROGRAM], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={"PYTHONPATH": str(ROOT)})
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == EXIT_TERMINATED == 143
    assert output.splitlines() == ["cleaned up", "terminated by SIGTERM"]  # no `except Exception` swallowed it
