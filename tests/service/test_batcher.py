"""The micro-batcher: batches per context, never above their size, a failure reaches only the requests at fault."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from hazardvision.service.batcher import MicroBatcher


class Recorder:
    """A run function that keeps the batches it was given; `gate` holds runs until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.gate = threading.Event()

    def __call__(self, context: str, items):
        self.gate.wait(10)
        self.batches.append((context, list(items)))
        if context == "broken":
            raise ValueError("the model failed")
        if any(item < 0 for item in items):
            raise ValueError(f"the model cannot take item {min(items)}")
        return [f"{context}:{item}" for item in items]


def run(coroutine):
    """`asyncio.run` on a thread of its own: the worker's main thread may hold a running loop already (Playwright's
    sync API keeps one there for the session's browser)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.mark.parametrize("window", [0.0, 0.005])
def test_batcher_answers_each_item_from_its_own_context(window):
    recorder = Recorder()
    recorder.gate.set()

    async def scenario():
        with ThreadPoolExecutor(2) as executor:
            batcher = MicroBatcher(recorder, executor, window_seconds=window, max_size=3, max_concurrent=1)
            return await asyncio.gather(*(batcher.submit("ab"[i % 2], i) for i in range(8)))

    assert run(scenario()) == [f"{'ab'[i % 2]}:{i}" for i in range(8)]
    assert all(len(items) <= 3 and all("ab"[i % 2] == context for i in items) for context, items in recorder.batches)


def test_batcher_gathers_waiting_items_while_runs_are_busy():
    recorder = Recorder()

    async def scenario():
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(recorder, executor, window_seconds=0, max_size=4, max_concurrent=1)
            first = asyncio.ensure_future(batcher.submit("a", 0))
            await asyncio.sleep(0.05)  # the first run has started and holds the only slot
            rest = [asyncio.ensure_future(batcher.submit("a", i)) for i in range(1, 6)]
            recorder.gate.set()
            return await asyncio.gather(first, *rest)

    assert run(scenario()) == [f"a:{i}" for i in range(6)]
    assert [items for _, items in recorder.batches] == [[0], [1, 2, 3, 4], [5]]


def test_batcher_broken_model_fails_every_request_of_the_batch():
    recorder = Recorder()
    recorder.gate.set()

    async def scenario():
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(recorder, executor, window_seconds=0.005, max_size=8, max_concurrent=1)
            return await asyncio.gather(*(batcher.submit("broken", i) for i in range(3)), return_exceptions=True)

    outcomes = run(scenario())
    assert all(isinstance(outcome, ValueError) for outcome in outcomes)


def test_batcher_poisoned_item_fails_only_its_own_request():
    recorder = Recorder()

    async def scenario():
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(recorder, executor, window_seconds=0, max_size=8, max_concurrent=1)
            first = asyncio.ensure_future(batcher.submit("a", 0))
            await asyncio.sleep(0.05)  # the others wait together for the only slot: one batch
            rest = [asyncio.ensure_future(batcher.submit("a", i)) for i in (1, -2, 3)]
            recorder.gate.set()
            return await asyncio.gather(first, *rest, return_exceptions=True)

    outcomes = run(scenario())
    assert outcomes[:2] == ["a:0", "a:1"] and outcomes[3] == "a:3"
    assert isinstance(outcomes[2], ValueError) and "item -2" in str(outcomes[2])
    assert [items for _, items in recorder.batches] == [[0], [1, -2, 3], [1], [-2], [3]]
