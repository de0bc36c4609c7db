"""Login throttling in Redis: failure counters per account and per IP, lockouts that double each time.

Keys (docs/architecture.md): `owr:login:fail:{acct|ip}:{subject}` and `owr:login:lock:{acct|ip}:{subject}`,
where an account's subject is the SHA-256 of its normalised email (no address in Redis). The n-th
failure at or past the limit locks the subject for base * 2**(n - limit) seconds, capped; a locked
subject is refused before its password is checked, so a lockout costs the attacker time, not us CPU.
Any Redis error fails closed: `LoginUnavailable` (503).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_auth.sessions.errors import LoginLocked, LoginUnavailable
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# One round trip per failure; INCR and SET are atomic, so concurrent failures all count.
_RECORD_FAILURE = """
local window = tonumber(ARGV[1])
local base = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local function bump(fail_key, lock_key, limit)
  local n = redis.call('INCR', fail_key)
  local lock = 0
  if n >= limit then
    lock = math.min(cap, base * math.pow(2, math.min(n - limit, 40)))
    lock = math.floor(lock)
    redis.call('SET', lock_key, '1', 'EX', lock)
  end
  redis.call('EXPIRE', fail_key, window + lock)
  return lock
end
return {bump(KEYS[1], KEYS[2], tonumber(ARGV[2])), bump(KEYS[3], KEYS[4], tonumber(ARGV[3]))}
"""


def account_subject(email: str) -> str:
    """The throttle subject of an account: SHA-256 of the normalised email, hex."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


def _keys(account: str, ip: str) -> tuple[str, str, str, str]:
    return (
        f"owr:login:fail:acct:{account}",
        f"owr:login:lock:acct:{account}",
        f"owr:login:fail:ip:{ip}",
        f"owr:login:lock:ip:{ip}",
    )


class LoginThrottle:
    """Per-account and per-IP failed-login counters and lockouts."""

    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self._redis = redis
        self._settings = settings
        self._record = redis.register_script(_RECORD_FAILURE)

    async def check(self, account: str, ip: str) -> None:
        """Raise `LoginLocked` with the remaining lock time if the account or the IP is locked."""
        _, lock_acct, _, lock_ip = _keys(account, ip)

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.pttl(lock_acct)
                pipe.pttl(lock_ip)
                result: list[Any] = await pipe.execute()
                return result

        remaining_ms = max(int(v) for v in await self._guard(read))
        if remaining_ms > 0:
            raise LoginLocked(retry_after=math.ceil(remaining_ms / 1000))

    async def record_failure(self, account: str, ip: str) -> None:
        """Count one failure against the account and the IP, locking either at its limit."""
        s = self._settings
        args = [
            s.login_failure_window_seconds,
            s.login_max_failures_per_account,
            s.login_max_failures_per_ip,
            s.login_lockout_base_seconds,
            s.login_lockout_max_seconds,
        ]

        async def record() -> Any:
            return await self._record(keys=list(_keys(account, ip)), args=args)

        locks = await self._guard(record)
        if any(int(v) > 0 for v in locks):
            # The subject is a hash or an address, never an email; worth an alert when it repeats.
            log.warning("login_locked", account_lock_s=int(locks[0]), ip_lock_s=int(locks[1]), ip=ip)

    async def clear_account(self, account: str) -> None:
        """Forget the account's failures after a successful login (the IP's count stays)."""
        fail_acct, _, _, _ = _keys(account, "")
        await self._guard(lambda: self._redis.delete(fail_acct))

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError) as exc:
            log.error("login_throttle_unavailable", error_type=type(exc).__name__)
            raise LoginUnavailable() from exc
