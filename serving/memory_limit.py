"""How much memory the category indexes may take: the container's limit less what the server already holds.

A category index is ScaNN's int8 brute-force copy of its rows (one byte a dimension, plus per-row scales) and the
row map; building one also gathers its rows into a float32 matrix first. Measured at 512 dimensions (bench/serve.py
--categories): see docs/BENCHMARKS.md, "Category indexes inside the memory limit".
"""

from __future__ import annotations

import os
from pathlib import Path

MIB = 1024 * 1024
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
# Resident bytes per dimension of a row in ScaNN's int8 brute-force index: measured 564 B a row at 512
# dimensions (36,000 rows: 19.4 MiB held after the build, 89.4 MiB at its peak); 1.15 leaves a little room.
INDEX_BYTES_PER_DIM = 1.15
ROW_MAP_BYTES = 8  # the int64 row number of each category row in the whole index
# Room left for everything that is not decoding nor a category index: requests, responses, allocator slack.
HEADROOM_MB = 512


def container_limit_bytes(cgroup_file: Path = CGROUP_MEMORY_MAX) -> int | None:
    """The cgroup v2 memory limit of this container, or None when there is none ("max") or no cgroup file."""
    try:
        text = cgroup_file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def physical_memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident set size now (/proc/self/statm), memory-mapped pages of the index included."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def category_index_bytes(rows: int, dim: int) -> int:
    """Resident bytes of one category index over ``rows`` vectors of ``dim`` dimensions."""
    return int(rows * (dim * INDEX_BYTES_PER_DIM + ROW_MAP_BYTES))


def build_peak_bytes(rows: int, dim: int) -> int:
    """The most one build adds while it runs: the index plus the gathered float32 rows it is built from."""
    return category_index_bytes(rows, dim) + rows * dim * 4


def category_index_budget_bytes(configured_mb: int | None, reserved_mb: int, limit: int | None = None) -> int:
    """``configured_mb`` when set; else the container's limit (physical memory without one) less the RSS now,
    ``reserved_mb`` (the query memory budget) and ``HEADROOM_MB``; never below 0."""
    if configured_mb is not None:
        return configured_mb * MIB
    if limit is None:
        limit = container_limit_bytes() or physical_memory_bytes()
    return max(0, limit - rss_bytes() - (reserved_mb + HEADROOM_MB) * MIB)
