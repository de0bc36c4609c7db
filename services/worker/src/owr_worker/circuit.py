"""A circuit breaker towards OpenRouter, in Redis so every worker process shares one view.

closed → open after `threshold` consecutive upstream failures; open → half-open after `open_seconds`;
half-open lets exactly one probe through (`SET NX` with a TTL, so a probe lost with its process frees
the slot); the probe's success closes the circuit, its failure opens it again.

What counts: a failure is OpenRouter being unavailable — 5xx (Cloudflare's 520-524 too), timeouts,
refused or reset connections, unreadable bodies. A success is any other answer, 401/402/403/404
included: OpenRouter answered, so it is up. 429 counts as neither: it means "slow down" (the limiter
and `Retry-After` handle it), not "down", and must not stop the keys that are within budget.

If Redis is unreachable the breaker cannot be shared; it lets requests through (logged once) — the
per-request retries and their backoff still bound the load.

Writes are saved where they change nothing: the verdict before a request says whether failures were
counted; a success after a verdict of "closed, no failure counted" writes nothing (there is no count to
reset). A failure another process counts while that request is under way is then not reset by it, so the
circuit may open a little sooner than "N in a row" in a mixed stream — never later, and still only after
`threshold` failures within the memory window. `gate.py` runs this verdict and the limiter's reservation
in one Lua call.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_worker.metrics import CIRCUIT_OPEN

log = get_logger(__name__)

PREFIX = "owr:worker:circuit:"
FAILURES_KEY = PREFIX + "failures"
OPEN_UNTIL_KEY = PREFIX + "open_until"
PROBE_KEY = PREFIX + "probe"
_KEYS = [FAILURES_KEY, OPEN_UNTIL_KEY, PROBE_KEY]

_NOW_MS = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# The verdict: 0 closed (go; no failure counted), 3 closed with failures counted (go), 1 open (refused),
# 2 half-open and this caller probes. Keys: failures, open_until, probe; probe_ms = the probe slot's TTL.
ALLOW_FUNCTION = """
local function circuit_allow(failures_key, open_key, probe_key, probe_ms, now)
  local open_until = redis.call('GET', open_key)
  if not open_until then
    if redis.call('EXISTS', failures_key) == 1 then return 3 end
    return 0
  end
  if now < tonumber(open_until) then return 1 end
  if redis.call('SET', probe_key, '1', 'NX', 'PX', probe_ms) then return 2 end
  return 1
end
"""
# ARGV[1] = probe TTL (ms).
_ALLOW = ALLOW_FUNCTION + _NOW_MS + "return circuit_allow(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now)\n"

# ARGV[1] = threshold, ARGV[2] = open duration (ms), ARGV[3] = how long failures are remembered (ms).
# Returns 1 when the circuit is open after this failure, else 0.
_FAILURE = (
    _NOW_MS
    + """
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local open_until = redis.call('GET', KEYS[2])
if open_until and now < tonumber(open_until) then return 1 end
if open_until or failures >= tonumber(ARGV[1]) then
  local until_ms = now + tonumber(ARGV[2])
  redis.call('SET', KEYS[2], string.format('%.0f', until_ms), 'PX', tonumber(ARGV[2]) + tonumber(ARGV[3]))
  redis.call('DEL', KEYS[3])
  return 1
end
return 0
"""
)

CLOSED, OPEN, PROBE = 0, 1, 2
# A verdict only: closed, with failures counted that the next success resets.
FAILING = 3
KEYS = tuple(_KEYS)


class CircuitOpenError(Exception):
    """OpenRouter is considered down; callers do not send the request."""


class CircuitBreaker:
    def __init__(self, redis: Any, *, threshold: int, open_seconds: float, probe_ttl_seconds: float) -> None:
        self._redis = redis
        self._allow = redis.register_script(_ALLOW)
        self._failure = redis.register_script(_FAILURE)
        self._threshold = threshold
        self._open_ms = max(1, round(open_seconds * 1000))
        self._probe_ms = max(1, round(probe_ttl_seconds * 1000))
        # Failures older than this no longer count as "consecutive" with a new one.
        self._memory_ms = max(self._open_ms * 10, 600_000)
        self._degraded = False

    @property
    def redis(self) -> Any:
        return self._redis

    @property
    def probe_ms(self) -> int:
        return self._probe_ms

    def unshared(self, exc: BaseException) -> None:
        """Redis failed: the breaker lets requests through (logged once until Redis answers again)."""
        if not self._degraded:
            self._degraded = True
            log.warning("openrouter_circuit_unshared", error_type=type(exc).__name__)

    def observed(self, verdict: int) -> int:
        """Note a verdict Redis gave (here or in the gate); returns it."""
        if self._degraded:
            self._degraded = False
            log.info("openrouter_circuit_shared_again")
        CIRCUIT_OPEN.set(1 if verdict in (OPEN, PROBE) else 0)
        return verdict

    async def verdict(self) -> int:
        """CLOSED, FAILING, OPEN or PROBE (this caller may send the half-open probe). Raises nothing."""
        try:
            result = int(await self._allow(keys=_KEYS, args=[self._probe_ms]))
        except (RedisError, OSError) as exc:
            self.unshared(exc)
            return CLOSED
        return self.observed(result)

    async def state(self) -> int:
        """CLOSED, OPEN or PROBE (this caller may send the half-open probe). Raises nothing."""
        result = await self.verdict()
        return CLOSED if result == FAILING else result

    async def before_request(self) -> int:
        """Raise `CircuitOpenError` unless a request may go now; returns the verdict for `record_success`."""
        result = await self.verdict()
        if result == OPEN:
            raise CircuitOpenError("OpenRouter unavailable (circuit open)")
        return result

    async def record_success(self, verdict: int | None = None) -> None:
        """OpenRouter answered: close the circuit and reset the count, unless `verdict` (the one this
        request went out under) was CLOSED with no failure counted, when there is nothing to write."""
        if verdict == CLOSED:
            return
        try:
            await self._redis.delete(*_KEYS)
        except (RedisError, OSError) as exc:
            self.unshared(exc)
            return
        CIRCUIT_OPEN.set(0)

    async def record_failure(self) -> bool:
        """Count an upstream failure; True when the circuit is (now) open."""
        try:
            opened = bool(await self._failure(keys=_KEYS, args=[self._threshold, self._open_ms, self._memory_ms]))
        except (RedisError, OSError) as exc:
            self.unshared(exc)
            return False
        if opened:
            CIRCUIT_OPEN.set(1)
        return opened
