"""Group commit for internal calls: the items of concurrent jobs go to keys and usage in one HTTP call.

`await batcher.submit(item)` returns that item's result. Items wait in a pending batch that goes out
when it holds `max_items`, or `max_wait_seconds` after its first item arrived, whichever is first — but
never while `max_in_flight` calls of this batcher are still under way: those items keep waiting and go
out together as soon as a call returns. So a quiet worker adds at most `max_wait_seconds` to a call,
and a busy one sends larger batches the longer the services take to answer (the usual group commit).

`send(items)` makes the one call and returns one result per item, in order; a result that is an
exception fails that item alone. When `send` itself raises, every item of that batch gets the same
exception, so each job takes its normal failure path (retry or report). When `split(exc)` says the
exception was about the batch's content (a 4xx, say), a batch of several is sent again one item at a
time, so one malformed item fails only its own job.

A batch of one item is sent in the context of its job (its trace and request id go with the call); a
batch of several in a fresh context, since no single job's trace is the batch's. `close()` sends
what is pending and waits for every call; a batcher that is closed sends each item at once.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from owr_worker.metrics import BATCH_SIZE

I = TypeVar("I")  # noqa: E741 - the conventional name for an item type
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How batches are cut: at most `max_items`, at most `max_wait_seconds` of waiting when idle."""

    max_items: int = 200
    max_wait_seconds: float = 0.025
    max_in_flight: int = 1


@dataclass(slots=True)
class _Entry(Generic[I, R]):
    item: I
    future: asyncio.Future[R]
    context: contextvars.Context


class Batcher(Generic[I, R]):
    def __init__(
        self,
        name: str,
        send: Callable[[Sequence[I]], Awaitable[Sequence[R | BaseException]]],
        policy: BatchPolicy | None = None,
        *,
        split: Callable[[BaseException], bool] | None = None,
    ) -> None:
        policy = policy or BatchPolicy()
        if policy.max_items < 1 or policy.max_in_flight < 1 or policy.max_wait_seconds < 0:
            raise ValueError("a batch needs max_items >= 1, max_in_flight >= 1 and max_wait_seconds >= 0")
        self.name = name
        self._send = send
        self._policy = policy
        self._split = split
        self._pending: list[_Entry[I, R]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._due = False  # the pending batch has waited long enough; it goes as soon as a call slot frees
        self._calls: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, item: I) -> R:
        """Queue `item` for the next batch and wait for its result (or its batch's exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append(_Entry(item, future, contextvars.copy_context()))
        if self._closed or len(self._pending) >= self._policy.max_items:
            self._due = True
        elif self._timer is None and not self._due:
            self._timer = loop.call_later(self._policy.max_wait_seconds, self._wait_over)
        self._maybe_send()
        # A cancelled job stops waiting; its item still goes out with its batch (every call is idempotent).
        return await future

    def _wait_over(self) -> None:
        self._timer = None
        self._due = True
        self._maybe_send()

    def _maybe_send(self) -> None:
        while self._due and self._pending and len(self._calls) < self._policy.max_in_flight:
            batch = self._pending[: self._policy.max_items]
            del self._pending[: self._policy.max_items]
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            # What is left over is already late: it goes with the next free slot.
            self._due = bool(self._pending)
            context = batch[0].context if len(batch) == 1 else contextvars.Context()
            task = asyncio.get_running_loop().create_task(self._run(batch), context=context)
            self._calls.add(task)
            task.add_done_callback(self._call_done)

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self._maybe_send()

    async def _run(self, batch: list[_Entry[I, R]]) -> None:
        BATCH_SIZE.labels(self.name).observe(len(batch))
        items = [entry.item for entry in batch]
        try:
            results = await self._call(items)
        except BaseException as exc:  # handed to every caller of the batch
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for entry, result in zip(batch, results, strict=True):
            if entry.future.done():
                continue
            if isinstance(result, BaseException):
                entry.future.set_exception(result)
            else:
                entry.future.set_result(result)

    async def _call(self, items: list[I]) -> Sequence[R | BaseException]:
        try:
            results = await self._send(items)
        except Exception as exc:
            if len(items) < 2 or self._split is None or not self._split(exc):
                raise
            # The batch was refused for its content: each item alone, so only the bad one fails.
            alone = await asyncio.gather(*(self._send([item]) for item in items), return_exceptions=True)
            return [outcome if isinstance(outcome, BaseException) else outcome[0] for outcome in alone]
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
        return results

    async def close(self) -> None:
        """Send what is pending now, wait for every call; later items are sent at once."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = True
        self._maybe_send()
        while self._calls or self._pending:
            await asyncio.gather(*self._calls, return_exceptions=True)
            self._due = True
            self._maybe_send()
