"""The memory budget's rules, on its own: what fits, who waits, what is refused, and that every byte comes back."""

from __future__ import annotations

import asyncio

import pytest

from serving.errors import OverloadedError, TooManyRequestsError
from serving.memory_budget import BODY_PEAK_COPIES, DECODE_BYTES_PER_PIXEL, MemoryBudget, body_bytes, decode_bytes
from serving.metrics import Metrics

MB = 1_000_000


def budget(total: int = 100 * MB, worst_decode: int = 40 * MB, share: float = 0.5, wait_s: float = 0.2) -> MemoryBudget:
    return MemoryBudget(total, worst_decode, share, 1, Metrics(), wait_s)


def test_costs_follow_the_measured_copies_and_bytes_per_pixel() -> None:
    assert decode_bytes(1_000_000, 5000) == 1_000_000 * DECODE_BYTES_PER_PIXEL + 5000
    assert body_bytes(MB) == int(MB * BODY_PEAK_COPIES) >= 2 * MB


def test_bodies_leave_room_for_one_worst_case_decode() -> None:
    async def scenario() -> None:
        memory = budget(share=1.0)
        first, second = memory.reservation("a"), memory.reservation("a")
        await first.reserve_body(50 * MB)
        with pytest.raises(OverloadedError, match="retry shortly"):
            await second.reserve_body(20 * MB)  # 70 MB of bodies: over the 60 MB left beside a 40 MB decode
        first.shrink_body(10 * MB)
        await second.reserve_body(20 * MB)
        await first.reserve_decode(40 * MB)  # the set-aside decode fits beside the bodies, without waiting
        assert memory.reserved == 70 * MB and memory.peak == 70 * MB
        first.release()
        second.release()
        assert memory.reserved == 0 and not memory.bodies_by_client

    asyncio.run(scenario())


def test_one_client_holds_at_most_its_share_of_the_bodies_others_still_fit() -> None:
    async def scenario() -> None:
        memory = budget(share=0.5)  # 60 MB for bodies, 30 MB per client
        mine = [memory.reservation("attacker") for _ in range(3)]
        await mine[0].reserve_body(20 * MB)
        with pytest.raises(TooManyRequestsError, match="this client's search bodies already hold its share"):
            await mine[1].reserve_body(20 * MB)  # 429: its own bodies keep it out, not the others'
        assert TooManyRequestsError.status == 429
        other = memory.reservation("someone else")
        await other.reserve_body(20 * MB)
        lone = memory.reservation("big")
        with pytest.raises(OverloadedError, match="taken by other searches"):
            await lone.reserve_body(50 * MB)  # larger than the client's share, and the pool is busy

    asyncio.run(scenario())


def test_a_waiting_reservation_gets_in_when_memory_comes_back() -> None:
    async def scenario() -> None:
        memory = budget(share=1.0, wait_s=5)
        holder, waiter = memory.reservation("a"), memory.reservation("b")
        await holder.reserve_body(60 * MB)
        waiting = asyncio.create_task(waiter.reserve_body(30 * MB))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        holder.release()
        await asyncio.wait_for(waiting, 1)
        assert memory.reserved == 30 * MB and memory.metrics.memory_waits._value.get() == 1

    asyncio.run(scenario())


def test_a_request_larger_than_the_budget_is_served_alone() -> None:
    async def scenario() -> None:
        memory = budget(total=MB, worst_decode=40 * MB)  # a tiny budget: no room for bodies beside a decode
        alone = memory.reservation("a")
        await alone.reserve_body(5 * MB)
        await alone.reserve_decode(40 * MB)
        with pytest.raises(OverloadedError):
            await memory.reservation("b").reserve_body(MB)
        with pytest.raises(OverloadedError):
            await memory.reservation("b").reserve_decode(MB)
        alone.release()
        await memory.reservation("b").reserve_body(5 * MB)

    asyncio.run(scenario())


def test_a_body_never_takes_room_that_decodes_already_use() -> None:
    """Decodes may use the bodies' idle share; a body arriving then waits, it does not push the total over."""

    async def scenario() -> None:
        memory = budget(share=1.0)  # 60 MB for bodies beside a 40 MB decode
        first, second = memory.reservation("a"), memory.reservation("b")
        await first.reserve_decode(40 * MB)
        await second.reserve_decode(40 * MB)
        with pytest.raises(OverloadedError):
            await memory.reservation("c").reserve_body(30 * MB)
        assert memory.peak == 80 * MB
        second.release()
        await memory.reservation("c").reserve_body(30 * MB)
        assert memory.peak <= memory.total

    asyncio.run(scenario())
