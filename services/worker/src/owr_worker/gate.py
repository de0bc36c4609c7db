"""The door before every request to OpenRouter: the circuit's verdict and a limiter slot in one Redis call.

The same two decisions `circuit.py` and `ratelimit.py` make on their own (their Lua functions, on one
reading of Redis's clock), in the same order: an open circuit refuses and reserves no slot; otherwise a
slot is reserved and the caller sleeps until it. One round trip instead of two on every request. If
Redis cannot be reached, each falls back as it does alone: the circuit lets the request through and
the limiter reserves in this process (both logged once).
"""

from __future__ import annotations

from redis.exceptions import RedisError

from owr_worker.circuit import ALLOW_FUNCTION, CLOSED, KEYS, OPEN, CircuitBreaker, CircuitOpenError
from owr_worker.ratelimit import RESERVE_FUNCTION, RateLimiter

# KEYS = circuit failures, open_until, probe, then the limiter's TAT key.
# ARGV = probe TTL (ms), emission interval (µs), burst. Returns {verdict, wait in µs}.
_ADMIT = (
    ALLOW_FUNCTION
    + RESERVE_FUNCTION
    + """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local verdict = circuit_allow(KEYS[1], KEYS[2], KEYS[3], ARGV[1], math.floor(now_us / 1000))
if verdict == 1 then return {verdict, 0} end
return {verdict, limiter_reserve(KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), now_us)}
"""
)


class UpstreamGate:
    """`verdict = await gate.admit()` before a request; hand the verdict to `CircuitBreaker.record_success`."""

    def __init__(self, circuit: CircuitBreaker, limiter: RateLimiter) -> None:
        self._circuit = circuit
        self._limiter = limiter
        self._script = circuit.redis.register_script(_ADMIT)
        self._keys = [*KEYS, limiter.key]
        self._args = [circuit.probe_ms, *limiter.script_args]

    async def admit(self) -> int:
        """Raise `CircuitOpenError`, or wait for this request's slot and return the circuit's verdict."""
        try:
            verdict, wait_us = await self._script(keys=self._keys, args=self._args)
        except (RedisError, OSError) as exc:
            self._circuit.unshared(exc)
            await self._limiter.wait(self._limiter.local_reserve(exc))
            return CLOSED
        if self._circuit.observed(int(verdict)) == OPEN:
            raise CircuitOpenError("OpenRouter unavailable (circuit open)")
        await self._limiter.wait(self._limiter.reserved(int(wait_us)))
        return int(verdict)
