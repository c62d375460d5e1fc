"""The category indexes' memory budget comes from the container's limit, less what the server holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.memory_limit import (
    HEADROOM_MB,
    MIB,
    build_peak_bytes,
    category_index_budget_bytes,
    category_index_bytes,
    container_limit_bytes,
    rss_bytes,
)


def test_the_container_limit_is_read_from_cgroup_v2(tmp_path: Path) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text("6442450944\n")
    assert container_limit_bytes(limit) == 6 * 1024 * MIB
    limit.write_text("max\n")
    assert container_limit_bytes(limit) is None
    assert container_limit_bytes(tmp_path / "absent") is None


def test_the_budget_is_the_limit_less_rss_decoding_and_headroom() -> None:
    held = np.ones(64 * MIB, dtype=np.uint8)  # resident: counted in the RSS the budget subtracts
    limit = rss_bytes() + 2048 * MIB
    budget = category_index_budget_bytes(None, 512, limit=limit)
    assert 0 < budget <= (2048 - 512 - HEADROOM_MB) * MIB
    assert budget > (2048 - 512 - HEADROOM_MB - 64) * MIB  # RSS moves a little between the two reads, not by 64 MiB
    assert category_index_budget_bytes(None, 512, limit=rss_bytes()) == 0  # over the limit already: nothing to build
    assert category_index_budget_bytes(100, 512, limit=1) == 100 * MIB  # a configured budget is used as it is
    del held


def test_an_index_costs_more_than_its_int8_rows_and_its_build_its_float32_rows_as_well() -> None:
    rows, dim = 10_000, 512
    assert rows * dim < category_index_bytes(rows, dim) < rows * dim * 4
    assert build_peak_bytes(rows, dim) == category_index_bytes(rows, dim) + rows * dim * 4
