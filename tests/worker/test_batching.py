"""The group-commit batcher: when batches go, what each caller gets back, failures, shutdown."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

import pytest

from owr_worker.batching import Batcher, BatchPolicy

job_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_var", default=None)


class Recorder:
    """A `send` that answers each item with its double (an item < 0 is an error of its own)."""

    def __init__(self, *, delay: float = 0.0, fail: BaseException | None = None) -> None:
        self.calls: list[list[int]] = []
        self.contexts: list[str | None] = []
        self.delay = delay
        self.fail = fail
        self.release: asyncio.Event | None = None

    async def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        self.contexts.append(job_var.get())
        if self.release is not None:
            await self.release.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return [ValueError(f"bad {i}") if i < 0 else i * 2 for i in items]


async def test_a_full_batch_goes_at_once():
    send = Recorder()
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=3, max_wait_seconds=60))
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(3))), timeout=1)
    assert results == [0, 2, 4]
    assert send.calls == [[0, 1, 2]]


async def test_a_partial_batch_goes_after_the_wait():
    send = Recorder()
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=100, max_wait_seconds=0.02))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert list(await asyncio.gather(batcher.submit(1), batcher.submit(2))) == [2, 4]
    assert loop.time() - started >= 0.015
    assert send.calls == [[1, 2]]


async def test_each_item_gets_its_own_result_or_error():
    send = Recorder()
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=10, max_wait_seconds=0.001))
    outcomes = await asyncio.gather(batcher.submit(1), batcher.submit(-1), batcher.submit(3), return_exceptions=True)
    assert outcomes[0] == 2
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 6
    assert send.calls == [[1, -1, 3]]


async def test_a_failed_call_fails_every_item_of_its_batch_only():
    boom = ConnectionError("down")
    send = Recorder(fail=boom)
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=2, max_wait_seconds=60))
    first = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert list(first) == [boom, boom]
    send.fail = None
    assert list(await asyncio.gather(batcher.submit(3), batcher.submit(4))) == [6, 8]
    assert send.calls == [[1, 2], [3, 4]]


async def test_a_refused_batch_is_split_when_asked():
    class Refused(Exception):
        pass

    calls: list[list[int]] = []

    async def send(items: Sequence[int]) -> list[int]:
        calls.append(list(items))
        if 13 in items:
            raise Refused()
        return list(items)

    batcher: Batcher[int, int] = Batcher(
        "t", send, BatchPolicy(max_items=3, max_wait_seconds=60), split=lambda e: isinstance(e, Refused)
    )
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in (1, 13, 3)), return_exceptions=True)
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], Refused)
    assert outcomes[2] == 3
    assert calls == [[1, 13, 3], [1], [13], [3]]


async def test_items_arriving_during_a_call_go_together_when_it_ends():
    send = Recorder()
    send.release = asyncio.Event()
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=100, max_wait_seconds=0.001))
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)
    assert send.calls == [[0]]
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0.02)  # well past the wait: still held, one call at a time
    assert send.calls == [[0]]
    send.release.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [2, 4, 6, 8, 10]
    assert send.calls == [[0], [1, 2, 3, 4, 5]]


async def test_a_lone_item_carries_its_jobs_context_a_batch_none():
    send = Recorder()
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=100, max_wait_seconds=0.001))

    async def job(name: str, item: int) -> int:
        job_var.set(name)
        return await batcher.submit(item)

    assert await job("alone", 1) == 2
    assert list(await asyncio.gather(job("a", 2), job("b", 3))) == [4, 6]
    assert send.contexts == ["alone", None]


async def test_close_sends_what_waits_and_later_items_go_at_once():
    send = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=100, max_wait_seconds=60))
    waiting = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert send.calls == []
    await asyncio.wait_for(batcher.close(), timeout=1)
    assert [w.result() for w in waiting] == [0, 2, 4]
    assert await asyncio.wait_for(batcher.submit(5), timeout=1) == 10
    assert send.calls == [[0, 1, 2], [5]]


async def test_a_cancelled_caller_does_not_disturb_the_others():
    send = Recorder(delay=0.02)
    batcher: Batcher[int, int] = Batcher("t", send, BatchPolicy(max_items=2, max_wait_seconds=60))
    gone = asyncio.ensure_future(batcher.submit(1))
    kept = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.005)
    gone.cancel()
    assert await kept == 4
    assert send.calls == [[1, 2]]


def test_policy_is_checked():
    with pytest.raises(ValueError, match="max_items"):
        Batcher("t", Recorder(), BatchPolicy(max_items=0))
