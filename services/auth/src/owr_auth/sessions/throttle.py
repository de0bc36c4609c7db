"""Login throttling in Redis: each attempt is checked and counted in one atomic step, before argon2.

Subjects (docs/decisions.md, 2026-12-01): the pair (account, client IP) and the client IP. An account's
subject is the SHA-256 of its normalised email (no address in Redis). Keys:
`owr:login:fail:pair:{account}:{ip}`, `owr:login:lock:pair:{account}:{ip}`, `owr:login:fail:ip:{ip}`,
`owr:login:lock:ip:{ip}`.

`begin` refuses a locked subject, else counts the attempt as a failure of both subjects at once, so
concurrent guesses cannot all pass a check that runs before the first of them is counted. The n-th
attempt at or past a limit locks the subject for base * 2**(n - limit) seconds, capped. A success
takes its attempt back (`succeeded`). An account is never locked for everyone: a guesser locks only
itself (its pair and its address), and the owner signs in from their own address meanwhile.
Any Redis error fails closed: `LoginUnavailable` (503).

`AttemptThrottle` is the same step for any subject under its own namespace: two-factor codes use it per
user from any address and per address (`owr:mfa:...`, `owr_auth.mfa.service.MfaKit`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_auth.sessions.errors import LoginLocked, LoginUnavailable
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# KEYS: pair fail, pair lock, ip fail, ip lock. ARGV: window, pair limit, ip limit, base, cap.
# Returns {0, pair lock s, ip lock s} when counted, or {remaining ms} when a lock refuses the attempt.
_BEGIN_ATTEMPT = """
local remaining = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[4]))
if remaining > 0 then
  return {remaining}
end
local window = tonumber(ARGV[1])
local base = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local function bump(fail_key, lock_key, limit)
  local n = redis.call('INCR', fail_key)
  local lock = 0
  if n >= limit then
    lock = math.floor(math.min(cap, base * math.pow(2, math.min(n - limit, 40))))
    redis.call('SET', lock_key, '1', 'EX', lock)
  end
  redis.call('EXPIRE', fail_key, window + lock)
  return lock
end
return {0, bump(KEYS[1], KEYS[2], tonumber(ARGV[2])), bump(KEYS[3], KEYS[4], tonumber(ARGV[3]))}
"""

# A success: the pair starts again; the address gets its attempt back, and its lock if that attempt set it.
_SUCCEEDED = """
redis.call('DEL', KEYS[1], KEYS[2])
local n = redis.call('DECR', KEYS[3])
if n <= 0 then
  redis.call('DEL', KEYS[3])
end
if n < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[4])
end
return n
"""


def account_subject(email: str) -> str:
    """The throttle subject of an account: SHA-256 of the normalised email, hex."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


def _keys(namespace: str, kind: str, subject: str, ip: str) -> list[str]:
    return [
        f"owr:{namespace}:fail:{kind}:{subject}",
        f"owr:{namespace}:lock:{kind}:{subject}",
        f"owr:{namespace}:fail:ip:{ip}",
        f"owr:{namespace}:lock:ip:{ip}",
    ]


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    window_seconds: int
    per_subject: int
    per_ip: int
    lockout_base_seconds: int
    lockout_max_seconds: int


class AttemptThrottle:
    """Attempt counters and lockouts of a subject and of a client IP, under `owr:{namespace}:...`."""

    def __init__(self, redis: Redis, *, namespace: str, subject_kind: str, limits: AttemptLimits) -> None:
        self._namespace = namespace
        self._kind = subject_kind
        self._limits = limits
        self._begin = redis.register_script(_BEGIN_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    async def begin_attempt(self, subject: str, ip: str) -> None:
        """Count an attempt before it is checked; `LoginLocked` (429) when a subject is locked."""
        lim = self._limits
        args = [lim.window_seconds, lim.per_subject, lim.per_ip, lim.lockout_base_seconds, lim.lockout_max_seconds]
        keys = _keys(self._namespace, self._kind, subject, ip)

        async def call() -> Any:
            return await self._begin(keys=keys, args=args)

        reply = [int(v) for v in await self._guard(call)]
        if len(reply) == 1:
            raise LoginLocked(retry_after=max(1, math.ceil(reply[0] / 1000)))
        if reply[1] > 0 or reply[2] > 0:
            # The subject is a hash, an id or an address, never an email; worth an alert when it repeats.
            log.warning(f"{self._namespace}_locked", subject_lock_s=reply[1], ip_lock_s=reply[2], ip=ip)

    async def attempt_succeeded(self, subject: str, ip: str) -> None:
        """The attempt `begin_attempt` counted was right: take it back."""
        keys = _keys(self._namespace, self._kind, subject, ip)

        async def call() -> Any:
            return await self._succeeded(keys=keys, args=[self._limits.per_ip])

        await self._guard(call)

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError) as exc:
            log.error(f"{self._namespace}_throttle_unavailable", error_type=type(exc).__name__)
            raise LoginUnavailable() from exc


class LoginThrottle(AttemptThrottle):
    """Per-(account, IP) and per-IP password attempts."""

    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        limits = AttemptLimits(
            window_seconds=settings.login_failure_window_seconds,
            per_subject=settings.login_max_failures_per_account,
            per_ip=settings.login_max_failures_per_ip,
            lockout_base_seconds=settings.login_lockout_base_seconds,
            lockout_max_seconds=settings.login_lockout_max_seconds,
        )
        super().__init__(redis, namespace="login", subject_kind="pair", limits=limits)

    async def begin(self, account: str, ip: str) -> None:
        """Count an attempt before its password is checked; `LoginLocked` (429) when a subject is locked."""
        await self.begin_attempt(f"{account}:{ip}", ip)

    async def succeeded(self, account: str, ip: str) -> None:
        """The attempt `begin` counted was the right password: take it back."""
        await self.attempt_succeeded(f"{account}:{ip}", ip)
