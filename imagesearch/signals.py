"""SIGTERM ends a command the way Ctrl-C would: the stack unwinds, cleanups run, the exit code says why.

In a container the command is PID 1, and the kernel delivers no signal to PID 1 whose action is the
default one: without a handler the kubelet's SIGTERM (a deleted pod, a drained node) is ignored and the
process is SIGKILLed after the grace period, skipping every ``finally`` (staged directories, temporary
files). Installed only by the commands' ``main``; the uvicorn server has its own handlers.
"""

from __future__ import annotations

import signal
from types import FrameType

EXIT_TERMINATED = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so no ``except Exception`` swallows it."""


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"terminated by {signal.Signals(signum).name}")


def terminate_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise)
