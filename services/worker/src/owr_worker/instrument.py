"""Wrap every job so its outcome and duration are counted by job name."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from owr_worker.metrics import JOB_DURATION, JOBS

# A job that met a Redis outage runs again after this long, rather than being recorded as failed and dropped.
REDIS_RETRY_SECONDS = 5.0

P = ParamSpec("P")
R = TypeVar("R")


def instrumented(job: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Count `owr_jobs_total{job,outcome}` (done, retry, failed, cancelled) and time the job; a Redis outage
    the job did not handle itself is a retry."""
    name = job.__name__

    @functools.wraps(job)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        start = time.perf_counter()
        outcome = "failed"
        try:
            result = await job(*args, **kwargs)
        except Retry:
            outcome = "retry"
            raise
        except (RedisConnectionError, RedisTimeoutError) as exc:
            outcome = "retry"
            raise Retry(defer=REDIS_RETRY_SECONDS) from exc
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        else:
            outcome = "done"
            return result
        finally:
            JOBS.labels(name, outcome).inc()
            JOB_DURATION.labels(name).observe(time.perf_counter() - start)

    return wrapper
