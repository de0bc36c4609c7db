"""How often a channel may be sent a test event or a retried delivery: fixed windows in Redis, counted and
checked in one step.

A test or a retry makes the worker call the channel's URL or send its email at once, so without a bound an
admin's script (or a stolen token) could turn usage into a sender of unbounded traffic to one receiver. Two
counters bound it: `owr:usage:channel-test:{channel_id}` (one channel) and
`owr:usage:workspace-channel-test:{workspace_id}` (every channel of the workspace, so that many channels to one
URL, or a loop of create, test and delete, cannot multiply the channel's limit). Each lives a minute from its
first count; every replica shares them. A Redis error fails closed (503), as auth's mail limits do: without
the counters nothing would bound the sends.

A confirmation email (double opt-in) goes to an address nobody confirmed, so on top of those it is bounded per
day: `USAGE_CONFIRMATIONS_PER_DAY` per channel and per address (a SHA-256 of it: the counter never holds the address),
whichever workspace asks, so creating, re-addressing or resending cannot flood a stranger's inbox.
"""

from __future__ import annotations

import hashlib
import math
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_usage.channels.errors import ChannelTestsThrottled, ChannelTestsUnavailable, ConfirmationsThrottled

log = get_logger(__name__)

WINDOW_SECONDS = 60
_CHANNEL_PREFIX = "owr:usage:channel-test:"
_WORKSPACE_PREFIX = "owr:usage:workspace-channel-test:"
DAY_SECONDS = 86_400
_CONFIRM_CHANNEL_PREFIX = "owr:usage:confirmations:channel:"
_CONFIRM_ADDRESS_PREFIX = "owr:usage:confirmations:address:"
# KEYS: the counters, in order; ARGV[1]: window (s); ARGV[1 + i]: KEYS[i]'s limit. Each counter is counted
# and checked in turn; the first past its limit stops there (the later ones are not spent) and returns
# {i, milliseconds until it resets}; {0, 0} when every one admits it.
_SPEND = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, tonumber(ARGV[1]))
  end
  if n > tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, tonumber(ARGV[1]))
      ttl = tonumber(ARGV[1]) * 1000
    end
    return {i, ttl}
  end
end
return {0, 0}
"""


class ChannelTestLimit:
    """At most `per_minute` sends on demand (tests and retries) per channel in a minute, and at most
    `per_workspace_minute` over all of a workspace's channels."""

    def __init__(self, redis: Redis, *, per_minute: int, per_workspace_minute: int, confirmations_per_day: int) -> None:
        self._confirmations_per_day = confirmations_per_day
        self._per_minute = per_minute
        self._per_workspace_minute = per_workspace_minute
        self._spend = redis.register_script(_SPEND)

    async def spend_confirmation(self, workspace_id: uuid.UUID, channel_id: uuid.UUID, address: str | None) -> None:
        """Count a confirmation email: as a test (per minute), then per channel and per `address` (when the caller
        has it in the clear: a create or a new address) per day; `ConfirmationsThrottled` past a day's."""
        await self.spend(workspace_id, channel_id)
        keys = [f"{_CONFIRM_CHANNEL_PREFIX}{channel_id}"]
        if address is not None:
            keys.append(_CONFIRM_ADDRESS_PREFIX + hashlib.sha256(address.strip().lower().encode()).hexdigest())
        per_day = self._confirmations_per_day
        which, wait_ms = await self._run(keys, [DAY_SECONDS, *([per_day] * len(keys))])
        if which:
            log.warning(
                "channel_confirmations_throttled",
                channel_id=str(channel_id),
                limit="channel" if which == 1 else "address",
            )
            raise ConfirmationsThrottled(per_day, retry_after=max(1, math.ceil(wait_ms / 1000)))

    async def _run(self, keys: list[str], args: list[int]) -> tuple[int, int]:
        try:
            which, wait_ms = await self._spend(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            log.error("channel_test_limit_unavailable", error_type=type(exc).__name__)
            raise ChannelTestsUnavailable() from exc
        return int(which), int(wait_ms)

    async def spend(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        """Count a test or retry of the channel; `ChannelTestsThrottled` (429, Retry-After) past either limit.
        The channel is counted first: a channel past its own limit does not use up the workspace's sends."""
        keys = [f"{_CHANNEL_PREFIX}{channel_id}", f"{_WORKSPACE_PREFIX}{workspace_id}"]
        which, wait_ms = await self._run(keys, [WINDOW_SECONDS, self._per_minute, self._per_workspace_minute])
        if which == 0:
            return
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        log.warning(
            "channel_tests_throttled",
            channel_id=str(channel_id),
            workspace_id=str(workspace_id),
            limit="channel" if int(which) == 1 else "workspace",
        )
        if int(which) == 1:
            raise ChannelTestsThrottled(self._per_minute, retry_after=retry_after)
        raise ChannelTestsThrottled(self._per_workspace_minute, retry_after=retry_after, workspace=True)
