"""Micro-batching: photos that arrive close together share one model run.

A batch leaves when it is full (`max_size`), when its window has passed (`window_seconds`, 0: at
once), and only when one of `max_concurrent` runs is free. While every run is busy, arriving
photos join the batches that wait, so under load batches grow by themselves without any added
wait; the window trades a little latency for fuller batches when the service is not saturated.
Only photos bound for the same context (the serving state a request started with) share a
batch, so a request is always answered by that state.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Context = TypeVar("Context")
Item = TypeVar("Item")
Result = TypeVar("Result")

BatchObserver = Callable[[int, float], None]
"""Called with (items in the batch, seconds the run took)."""


@dataclass(eq=False)
class _Batch(Generic[Context, Item, Result]):
    context: Context
    items: list[Item] = field(default_factory=list)
    futures: list[asyncio.Future[Result]] = field(default_factory=list)
    due: bool = False
    timer: asyncio.TimerHandle | None = None


class MicroBatcher(Generic[Context, Item, Result]):
    """Gathers items per context and runs `run(context, items)` once per batch in `executor`.

    `run` returns one result per item, in order. When it raises on a batch of several items, each
    item runs again alone, so that an item the model cannot take fails its own request and no
    other. With `max_size` 1 every item runs alone.
    """

    def __init__(
        self, run: Callable[[Context, Sequence[Item]], Sequence[Result]], executor: Executor, *,
        window_seconds: float, max_size: int, max_concurrent: int, observe: BatchObserver | None = None,
    ) -> None:
        self.run = run
        self.executor = executor
        self.window = window_seconds
        self.max_size = max_size
        self.max_concurrent = max_concurrent
        self.observe = observe
        self._waiting: deque[_Batch[Context, Item, Result]] = deque()
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, context: Context, item: Item) -> Result:
        """The result for `item`, from a batch run on `context`."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        batch = next((b for b in reversed(self._waiting)
                      if b.context is context and len(b.items) < self.max_size), None)
        if batch is None:
            batch = _Batch(context)
            self._waiting.append(batch)
            if self.window > 0:
                batch.timer = asyncio.get_running_loop().call_later(self.window, self._expire, batch)
            else:
                batch.due = True
        batch.items.append(item)
        batch.futures.append(future)
        if len(batch.items) >= self.max_size:
            batch.due = True
        self._dispatch()
        return await future

    def _expire(self, batch: _Batch[Context, Item, Result]) -> None:
        batch.due = True
        self._dispatch()

    def _dispatch(self) -> None:
        """Start due batches, oldest first, while runs are free."""
        while len(self._running) < self.max_concurrent:
            batch = next((b for b in self._waiting if b.due), None)
            if batch is None:
                return
            self._waiting.remove(batch)
            if batch.timer is not None:
                batch.timer.cancel()
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._dispatch()

    async def _run(self, batch: _Batch[Context, Item, Result]) -> None:
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, self.run, batch.context, batch.items)
        except Exception as error:
            if len(batch.items) == 1:
                _fail(batch.futures[0], error)
            else:  # find the item(s) at fault: each runs alone, and only its own request gets the failure
                await self._run_alone(batch)
            return
        if self.observe is not None:
            self.observe(len(batch.items), time.perf_counter() - start)
        for future, result in zip(batch.futures, results, strict=True):
            _answer(future, result)

    async def _run_alone(self, batch: _Batch[Context, Item, Result]) -> None:
        loop = asyncio.get_running_loop()
        for item, future in zip(batch.items, batch.futures, strict=True):
            if future.done():  # its request timed out meanwhile
                continue
            try:
                (result,) = await loop.run_in_executor(self.executor, self.run, batch.context, [item])
            except Exception as error:
                _fail(future, error)
            else:
                _answer(future, result)


def _fail(future: asyncio.Future[Result], error: Exception) -> None:
    if not future.done():  # a request that timed out has cancelled its future
        future.set_exception(error)


def _answer(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)
