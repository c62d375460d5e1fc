"""serving/allocator.py in a fresh interpreter: with glibc's malloc tuned, memory freed after big allocations goes
back to the system; without, the same pattern leaves it in the heap (tests/serving/test_query_memory_http.py and
bench/abuse.py measure the server's RSS under bursts)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# A big block freed (glibc then raises its mmap threshold past that size), then four threads (as the server's decode
# threads) each allocate 16 3-MiB blocks, each followed by a small block still in use, and free them: how many MiB of
# the 192 stay resident.
PROBE = """
import re, sys, threading
from serving.allocator import tune_allocator
def rss():
    return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) // 1024
if sys.argv[1] == 'tuned':
    assert tune_allocator()
warm = bytearray(8 * 1024 * 1024)
del warm
keep = []
def work():
    blocks = []
    for _ in range(16):
        block = bytearray(3 * 1024 * 1024)
        block[::4096] = b'x' * len(block[::4096])
        blocks.append(block)
        keep.append(bytes(3000))
before = rss()
threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(rss() - before)
"""


def retained_mib(mode: str) -> int:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return int(done.stdout)


def test_freed_blocks_go_back_to_the_system_only_with_the_tuned_allocator() -> None:
    assert retained_mib("tuned") < 20
    assert retained_mib("default") > 100  # what the server did before: each burst's memory stayed
