"""Riding out a Redis outage: the worker keeps running, reports not-ready, and resumes when Redis is back.

ARQ's own worker lets the first failed Redis call end its poll loop, and then fails again while closing,
so the process exits. `ResilientWorker` retries instead, with capped full-jitter backoff, and logs one
`redis_unavailable` per outage and one `redis_recovered` at its end. Jobs are delivered at least once:
a job whose bookkeeping failed stays queued and runs again when its in-progress mark lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable

from arq.connections import ArqRedis
from arq.utils import poll
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from owr_shared.logging import get_logger
from owr_worker.backoff import full_jitter
from owr_worker.metrics import REDIS_UP
from owr_worker.settings import WorkerSettings

log = get_logger("owr.worker")

# What an unreachable or frozen Redis raises (refused, reset, timed out, still loading its data).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class RedisUnavailable(Exception):
    """The readiness check's failure while the worker is waiting for Redis."""


class RedisOutage:
    """Whether Redis is away, since when, and how long to wait before the next attempt."""

    def __init__(
        self,
        *,
        base_seconds: float,
        cap_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self._clock = clock
        self._rand = rand
        self.down_since: float | None = None
        self.attempts = 0

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> RedisOutage:
        return cls(base_seconds=settings.redis_retry_base_seconds, cap_seconds=settings.redis_retry_cap_seconds)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> float:
        """Record a failed attempt; returns the seconds to wait before the next one."""
        if self.down_since is None:
            self.down_since = self._clock()
            REDIS_UP.set(0)
            log.warning("redis_unavailable", error_type=type(exc).__name__, error=str(exc)[:200])
        self.attempts += 1
        return full_jitter(self.attempts, base=self.base_seconds, cap=self.cap_seconds, rand=self._rand)

    def recovered(self) -> None:
        REDIS_UP.set(1)
        if self.down_since is None:
            return
        down_for = self._clock() - self.down_since
        log.info("redis_recovered", outage_seconds=round(down_for, 2), attempts=self.attempts)
        self.down_since = None
        self.attempts = 0

    async def check(self) -> None:
        """Readiness: ready only while the poll loop reaches Redis (a ping alone may answer first)."""
        if self.down:
            raise RedisUnavailable("waiting for Redis")


class ResilientWorker(Worker):
    """An ARQ worker that never exits because Redis went away (see the module's docstring)."""

    @property
    def outage(self) -> RedisOutage:
        outage: RedisOutage = self.ctx["redis_outage"]
        return outage

    def _connect(self) -> ArqRedis:
        """The queue's client, bounded like every Redis client of this system (a frozen Redis must not hang
        the poll loop); created without connecting."""
        settings: WorkerSettings = self.ctx["settings"]
        timeout = settings.redis_timeout_seconds
        pool: ArqRedis = ArqRedis.from_url(
            settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        pool.job_serializer = self.job_serializer
        pool.job_deserializer = self.job_deserializer
        pool.default_queue_name = self.queue_name
        pool.expires_extra_ms = self.expires_extra_ms
        return pool

    async def main(self) -> None:
        # The health server starts before Redis is reached: liveness answers (so no probe restarts a worker
        # that only waits), readiness says 503 until the queue is reachable.
        if self._pool is None:
            self._pool = self._connect()
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        await self._wait_for_redis()
        log.info("worker_polling", queue=self.queue_name, functions=sorted(self.functions))
        async for _ in poll(self.poll_delay_s):
            await self._poll_iteration()
            if self.burst and not self.tasks and not await self.pool.zcard(self.queue_name):
                return

    async def _wait_for_redis(self) -> None:
        while True:
            try:
                await self.pool.ping()
            except REDIS_DOWN as exc:
                await asyncio.sleep(self.outage.failed(exc))
            else:
                self.outage.recovered()
                return

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await asyncio.sleep(self.outage.failed(exc))
        else:
            self.outage.recovered()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        for job_id in job_ids:
            try:
                await super().start_jobs([job_id])
            except REDIS_DOWN:
                # arq took a slot for the job before its Redis call failed and nothing started: give it back,
                # or each outage would leak slots until the worker took no job at all.
                self.job_counter -= 1
                self.sem.release()
                raise

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except REDIS_DOWN as exc:
            # The job (or only its bookkeeping) met the outage. It is still queued: it runs again once its
            # in-progress mark lapses, and the jobs are idempotent.
            log.warning("job_left_queued", job_id=job_id, error_type=type(exc).__name__)

    async def close(self) -> None:
        """arq's close, except that Redis being away does not make it raise (nor hang on a frozen one)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_DOWN):
            async with asyncio.timeout(1.0):
                await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(*REDIS_DOWN):
            await self.pool.aclose(close_connection_pool=True)
        self._pool = None
