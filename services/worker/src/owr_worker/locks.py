"""The per-key lock that keeps one key's jobs from overlapping, across every worker process."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import NoScriptError, RedisError

from owr_shared.logging import get_logger

log = get_logger(__name__)

LOCK_PREFIX = "owr:worker:lock:"

# Delete only when the value is still ours: after a TTL expiry another job may hold the lock now.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


_RELEASE_SHA = hashlib.sha1(_RELEASE.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


async def _release(redis: Any, name: str, token: str) -> None:
    """Compare-and-delete by EVALSHA (sent once per job: no script text for Redis to hash each time)."""
    try:
        await redis.evalsha(_RELEASE_SHA, 1, name, token)
    except NoScriptError:
        await redis.eval(_RELEASE, 1, name, token)


def lock_key(key_id: str) -> str:
    return f"{LOCK_PREFIX}{key_id}"


@asynccontextmanager
async def key_lock(redis: Any, key_id: str, *, ttl_seconds: int) -> AsyncIterator[bool]:
    """Yield True when this job holds `owr:worker:lock:{key_id}` (SET NX PX), False when another does."""
    name = lock_key(key_id)
    token = secrets.token_hex(16)
    acquired = bool(await redis.set(name, token, nx=True, px=ttl_seconds * 1000))
    try:
        yield acquired
    finally:
        if acquired:
            try:
                await _release(redis, name, token)
            except (RedisError, OSError) as exc:
                # The TTL frees it anyway; failing the job here would only repeat finished work.
                log.warning("key_lock_release_failed", error_type=type(exc).__name__)
