"""A micro-batcher in front of the model: requests that arrive while the model is busy are run
together as one batch (up to ``max_batch``), which is what lets many clients share one ONNX
Runtime session efficiently.

A batch waits for company only when more is known to be coming: the app calls ``expect()`` as
a request starts (before its body is read and decoded) and the batcher waits up to
``max_wait`` seconds for those requests. A lone client is never held back.

The model runs in a worker thread, so the event loop keeps accepting and parsing requests.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import numpy as np


class Overloaded(Exception):
    """The queue is full: the caller should answer 503."""


class MicroBatcher:
    def __init__(self, run: Callable[[np.ndarray], list[np.ndarray]], max_batch: int = 16, max_wait: float = 0.0,
                 max_queue: int = 256, observe: Callable[[int, list[float]], None] | None = None):
        self.run, self.max_batch, self.max_wait, self.max_queue = run, max_batch, max_wait, max_queue
        self.observe = observe or (lambda batch, waits: None)  # (batch size, each request's queue time)
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.coming = 0  # requests being read or decoded, not yet submitted

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    @contextlib.contextmanager
    def expect(self):
        """Around a request's reading and decoding: meanwhile the batcher knows it is coming."""
        self.coming += 1
        try:
            yield
        finally:
            self.coming -= 1

    async def submit(self, samples: np.ndarray) -> list[np.ndarray]:
        """Run ``samples`` (a batch of one or more) and return their outputs."""
        if self.queue.qsize() >= self.max_queue:
            raise Overloaded(f"{self.queue.qsize()} requests are waiting")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((samples, future, time.perf_counter()))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            size = len(items[0][0])
            deadline = time.perf_counter() + self.max_wait
            while size < self.max_batch:
                if self.queue.empty():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0 or self.coming <= 0:
                        break
                    try:
                        items.append(await asyncio.wait_for(self.queue.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    items.append(self.queue.get_nowait())
                size += len(items[-1][0])
            items = [it for it in items if not it[1].cancelled()]  # clients that gave up
            if not items:
                continue
            start = time.perf_counter()
            self.observe(sum(len(it[0]) for it in items), [start - queued for _, _, queued in items])
            try:
                outputs = await loop.run_in_executor(None, self.run, np.concatenate([it[0] for it in items]))
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which answers it
                for _, future, _ in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            offset = 0
            for samples, future, _ in items:
                n = len(samples)
                if not future.done():
                    future.set_result([o[offset:offset + n] for o in outputs])
                offset += n
