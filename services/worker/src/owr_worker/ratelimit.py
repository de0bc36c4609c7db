"""One request budget towards OpenRouter for every worker process: GCRA in Redis, one Lua call per acquire.

Each `acquire` reserves the next free slot and sleeps until it comes, so callers queue in arrival order
instead of polling. The theoretical arrival time (TAT) lives in `owr:worker:openrouter:rate`, in
microseconds of Redis's own clock (`TIME`), so processes on hosts with skewed clocks still agree.
When Redis cannot be reached, each process falls back to the same algorithm in memory (logged once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_worker.metrics import LIMITER_WAIT

log = get_logger(__name__)

RATE_KEY = "owr:worker:openrouter:rate"

# Reserve the next slot: the TAT key, the emission interval (µs), the burst, Redis's now (µs). Returns the
# wait in µs. A function, so `gate.py` can run it in the same call as the circuit's verdict.
RESERVE_FUNCTION = """
local function limiter_reserve(key, interval, burst, now)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - now - (burst - 1) * interval
  if wait < 0 then wait = 0 end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
  return wait
end
"""
# KEYS[1] = TAT key; ARGV[1] = emission interval (µs); ARGV[2] = burst. Returns the wait in µs.
_ACQUIRE = (
    RESERVE_FUNCTION
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return limiter_reserve(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
"""
)


class LocalGcra:
    """The same reservation algorithm for one process, used while Redis is away."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self.burst = burst
        self._clock = clock
        self._tat = 0.0

    def reserve(self) -> float:
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self.interval
        return max(0.0, tat - now - (self.burst - 1) * self.interval)


class RateLimiter:
    """`await limiter.acquire()` before every request to OpenRouter."""

    def __init__(
        self,
        redis: Any,
        *,
        rate: float,
        burst: int = 1,
        key: str = RATE_KEY,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._script = redis.register_script(_ACQUIRE)
        self._key = key
        self._interval_us = max(1, round(1_000_000 / rate))
        self._burst = burst
        self._sleep = sleep
        self._local = LocalGcra(rate, burst)
        self._degraded = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def script_args(self) -> list[int]:
        """The reservation's arguments: emission interval (µs) and burst."""
        return [self._interval_us, self._burst]

    def local_reserve(self, exc: BaseException) -> float:
        """Redis failed: reserve in this process's limiter (logged once until Redis answers again)."""
        if not self._degraded:
            self._degraded = True
            log.warning("openrouter_limiter_local_fallback", error_type=type(exc).__name__)
        return self._local.reserve()

    def reserved(self, wait_us: int) -> float:
        """Note a reservation Redis made (here or in the gate); returns the wait in seconds."""
        if self._degraded:
            self._degraded = False
            log.info("openrouter_limiter_shared_again")
        return int(wait_us) / 1_000_000

    async def reserve(self) -> float:
        """Reserve a slot; returns the seconds to wait for it."""
        try:
            wait_us = await self._script(keys=[self._key], args=self.script_args)
        except (RedisError, OSError) as exc:
            return self.local_reserve(exc)
        return self.reserved(wait_us)

    async def wait(self, seconds: float) -> float:
        """Sleep until a reserved slot comes; returns the seconds waited."""
        LIMITER_WAIT.observe(seconds)
        if seconds > 0:
            await self._sleep(seconds)
        return seconds

    async def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        return await self.wait(await self.reserve())
