"""glibc malloc settings that give a search's freed input memory back to the system.

By default glibc serves an allocation from its heaps once a freed block of that size has been memory-mapped (the
mmap threshold rises with every large free, up to 32 MiB), and gives each thread contending for malloc its own
arena. Freed 10 MiB bodies and decode buffers then stay in the process's heaps, scattered over arenas, and its RSS
ratchets up attack after attack. A fixed threshold keeps every block of ``MMAP_THRESHOLD`` or more memory-mapped
(returned to the system on free), and few arenas keep the rest compact. The environment (MALLOC_MMAP_THRESHOLD_,
MALLOC_ARENA_MAX) overrides both, as glibc documents. Measured by bench/abuse.py (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Apply the settings above unless the environment sets them; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("not glibc: malloc settings left as they are")
        return False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(M_ARENA_MAX, ARENA_MAX)
    return True
