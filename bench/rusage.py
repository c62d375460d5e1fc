"""Run a command and write its own wall time, CPU time and peak RSS as JSON: ``python -m bench.rusage OUT -- ARGV...``.

A child's ``ru_maxrss`` counts the memory it inherited at ``fork`` before its ``exec``, so a step forked straight
from a big benchmark process reports the benchmark's size. This launcher imports nothing heavy and forks the
step from its own small process, so the figure is the step's. Standard library only, on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    out, separator, command = argv[0], argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: python -m bench.rusage OUT -- ARGV...")
    began = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    with open(out, "w") as sink:
        json.dump({"returncode": returncode, "seconds": time.perf_counter() - began,
                   "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_bytes": usage.ru_maxrss * 1024}, sink)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
