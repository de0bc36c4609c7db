"""How often one channel may be sent a test event: a fixed window in Redis, counted and checked in one step.

A test makes the worker call the channel's URL or send its email at once, so without a bound an admin's
script (or a stolen token) could turn usage into a sender of unbounded traffic to one receiver. The counter
`owr:usage:channel-test:{channel_id}` lives a minute from its first test; every replica shares it. A Redis
error fails closed (503), as auth's mail limits do: without the counter nothing would bound the sends.
"""

from __future__ import annotations

import math
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_usage.channels.errors import ChannelTestsThrottled, ChannelTestsUnavailable

log = get_logger(__name__)

WINDOW_SECONDS = 60
_PREFIX = "owr:usage:channel-test:"
# KEYS[1]: the counter; ARGV[1]: window (s); ARGV[2]: limit. Returns 0, or the milliseconds until it resets.
_SPEND = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
    ttl = tonumber(ARGV[1]) * 1000
  end
  return ttl
end
return 0
"""


class ChannelTestLimit:
    """At most `per_minute` test events per channel in a minute."""

    def __init__(self, redis: Redis, *, per_minute: int) -> None:
        self._per_minute = per_minute
        self._spend = redis.register_script(_SPEND)

    async def spend(self, channel_id: uuid.UUID) -> None:
        """Count a test of the channel; `ChannelTestsThrottled` (429, Retry-After) past the limit."""
        try:
            wait_ms = int(await self._spend(keys=[f"{_PREFIX}{channel_id}"], args=[WINDOW_SECONDS, self._per_minute]))
        except (RedisError, OSError) as exc:
            log.error("channel_test_limit_unavailable", error_type=type(exc).__name__)
            raise ChannelTestsUnavailable() from exc
        if wait_ms > 0:
            log.warning("channel_tests_throttled", channel_id=str(channel_id))
            raise ChannelTestsThrottled(self._per_minute, retry_after=max(1, math.ceil(wait_ms / 1000)))
