"""Limits on the emails a person can make auth send, in Redis: fixed windows, counted and checked in one
atomic step before anything else happens.

Subjects: password resets per client address (`owr:mail:reset:ip:{ip}`) and per email address, known or
not (`owr:mail:reset:email:{sha256(email)}`: no address in Redis), verification emails per account
(`owr:mail:verify:user:{user_id}`). Each counter lives `account_mail_window_seconds` from its first use.
Past a limit: 429 with `Retry-After`, the same whether or not the address has an account. A Redis error
fails closed (503): without the limits, nothing would bound the mail one could make auth send.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_auth.mail.errors import MailThrottled, MailUnavailable
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger

log = get_logger(__name__)

# KEYS: counters; ARGV[1]: window (s); ARGV[2..]: each counter's limit. Every counter counts the attempt;
# returns 0, or the milliseconds until the latest-expiring counter that is past its limit starts again.
_SPEND = """
local wait = 0
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, tonumber(ARGV[1]))
  end
  if n > tonumber(ARGV[i + 1]) then
    wait = math.max(wait, redis.call('PTTL', key))
  end
end
return wait
"""


class AccountMailLimits:
    """The per-window limits of password-reset and verification emails."""

    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self._settings = settings
        self._spend = redis.register_script(_SPEND)

    async def password_reset(self, *, ip: str, account: str) -> None:
        """Count a reset request from `ip` for the account subject (SHA-256 of the normalised email)."""
        s = self._settings
        await self._check(
            "password_reset",
            [
                (f"owr:mail:reset:ip:{ip}", s.password_reset_max_per_ip),
                (f"owr:mail:reset:email:{account}", s.password_reset_max_per_email),
            ],
        )

    async def verification(self, user_id: uuid.UUID) -> None:
        await self._check("verification", [(f"owr:mail:verify:user:{user_id}", self._settings.verification_resend_max)])

    async def _check(self, what: str, counters: list[tuple[str, int]]) -> None:
        args: list[Any] = [self._settings.account_mail_window_seconds, *(limit for _, limit in counters)]
        try:
            wait_ms = int(await self._spend(keys=[key for key, _ in counters], args=args))
        except (RedisError, OSError) as exc:
            log.error("mail_limits_unavailable", error_type=type(exc).__name__)
            raise MailUnavailable() from exc
        if wait_ms > 0:
            log.warning("mail_throttled", what=what)
            raise MailThrottled(retry_after=max(1, math.ceil(wait_ms / 1000)))
