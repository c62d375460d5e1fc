"""Micro-batching: concurrent requests' inputs go through the network together.

One consumer task takes the first waiting input, then whatever else is already queued, then waits
at most ``max_wait_s`` for more, up to ``max_size`` inputs; the batch runs on a single inference
thread while the next batch gathers. ``max_size=1`` turns batching off (one input per call).
``max_pending`` bounds the inputs waiting or running: past it, :class:`QueueFullError` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

BatchFunction = Callable[[np.ndarray], np.ndarray]
BatchObserver = Callable[[int, float], None]


class QueueFullError(Exception):
    """Too many inputs are already waiting."""


@dataclass
class _Pending:
    array: np.ndarray
    future: asyncio.Future[np.ndarray]


class MicroBatcher:
    def __init__(
        self,
        run_batch: BatchFunction,
        max_size: int,
        max_wait_s: float,
        max_pending: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.on_batch = on_batch
        self.pending = 0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._consumer: asyncio.Task[None] | None = None

    async def submit(self, array: np.ndarray) -> np.ndarray:
        """The network's output row for one input, computed in a batch with its neighbours in time."""
        if self.pending >= self.max_pending:
            raise QueueFullError(f"{self.pending} queries are already waiting for inference")
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(), name="micro-batcher")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.pending += 1
        try:
            self._queue.put_nowait(_Pending(array, future))
            return await future
        finally:
            self.pending -= 1

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        self._executor.shutdown(wait=True)

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            live = [item for item in batch if not item.future.done()]  # drop callers that went away
            if not live:
                continue
            began = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, self.run_batch, np.stack([item.array for item in live]))
            except Exception as exc:
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), time.perf_counter() - began)
            for item, output in zip(live, outputs, strict=True):
                if not item.future.done():
                    item.future.set_result(output)

    async def _gather(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch
