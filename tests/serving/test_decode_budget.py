from __future__ import annotations

from serving.decode_budget import DECODE_BYTES_PER_PIXEL, decode_permits, worst_case_decode_bytes


def test_permits_fit_the_budget_at_the_worst_case_and_never_drop_to_zero() -> None:
    assert worst_case_decode_bytes(1_000_000) == 1_000_000 * DECODE_BYTES_PER_PIXEL
    permits = decode_permits(1024, 40_000_000)
    assert permits * worst_case_decode_bytes(40_000_000) <= 1024 * 1024 * 1024 < \
        (permits + 1) * worst_case_decode_bytes(40_000_000)
    assert decode_permits(1, 40_000_000) == 1
