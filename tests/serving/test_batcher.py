"""The micro-batcher: batches concurrent inputs, bounded in size, wait and queue; errors reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batcher import MicroBatcher, QueueFullError

pytestmark = pytest.mark.anyio


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """Doubles its inputs, slowly, and remembers the batch sizes it saw."""

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        return batch * 2


async def submit_all(batcher: MicroBatcher, count: int) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.submit(np.full(3, float(i))) for i in range(count)))


async def test_concurrent_inputs_share_batches_and_each_caller_gets_its_own_row() -> None:
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_size=8, max_wait_s=0.05, max_pending=100)
    try:
        outputs = await submit_all(batcher, 20)
    finally:
        await batcher.close()
    assert [float(output[0]) for output in outputs] == [2.0 * i for i in range(20)]
    assert sum(recorder.sizes) == 20 and max(recorder.sizes) == 8 and len(recorder.sizes) <= 4
    assert all(name.startswith("inference") for name in recorder.threads)  # never on the event loop


async def test_max_size_one_turns_batching_off() -> None:
    recorder = Recorder(delay_s=0.001)
    batcher = MicroBatcher(recorder, max_size=1, max_wait_s=0.05, max_pending=100)
    try:
        await submit_all(batcher, 6)
    finally:
        await batcher.close()
    assert recorder.sizes == [1] * 6


async def test_a_lone_input_waits_at_most_the_bounded_wait() -> None:
    batcher = MicroBatcher(Recorder(delay_s=0), max_size=16, max_wait_s=0.05, max_pending=100)
    try:
        began = time.perf_counter()
        await batcher.submit(np.ones(3))
        assert time.perf_counter() - began < 0.5
    finally:
        await batcher.close()


async def test_a_full_queue_refuses_at_once() -> None:
    recorder = Recorder(delay_s=0.2)
    batcher = MicroBatcher(recorder, max_size=2, max_wait_s=0.0, max_pending=3)
    try:
        results = await asyncio.gather(*(batcher.submit(np.ones(3)) for _ in range(6)), return_exceptions=True)
        refused = [result for result in results if isinstance(result, QueueFullError)]
        assert len(refused) == 3 and all(isinstance(result, np.ndarray) for result in results[:3])
        assert batcher.pending == 0
        await batcher.submit(np.ones(3))  # room again once the queue drains
    finally:
        await batcher.close()


async def test_a_failing_batch_fails_its_callers_and_the_batcher_keeps_going() -> None:
    calls = 0

    def flaky(batch: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return batch

    batcher = MicroBatcher(flaky, max_size=4, max_wait_s=0.01, max_pending=10)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(np.ones(3))
        assert (await batcher.submit(np.ones(3)) == 1).all()
    finally:
        await batcher.close()


async def test_callers_that_go_away_are_skipped() -> None:
    recorder = Recorder(delay_s=0.1)
    batcher = MicroBatcher(recorder, max_size=1, max_wait_s=0.0, max_pending=10)
    try:
        first = asyncio.create_task(batcher.submit(np.ones(3)))
        second = asyncio.create_task(batcher.submit(np.ones(3)))
        await asyncio.sleep(0.02)
        second.cancel()
        await first
        assert batcher.pending == 0
        await batcher.submit(np.ones(3))
    finally:
        await batcher.close()
    assert recorder.sizes == [1, 1]
