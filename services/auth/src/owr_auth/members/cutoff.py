"""Cutting a member's tokens off in one workspace at once: the membership cut-off the gateway reads.

Removing a member or lowering their role writes `owr:revoked:member:{workspace_id}:{user_id}` = now (to
the microsecond), which the gateway checks in the same Redis call as the user cut-off and the `sid`
denylist: an access JWT, or an API token's cached introspection, of that member in that workspace
issued before it is refused (an API token is introspected again, and so gets the new role or none).
Tokens minted afterwards carry the new role: whatever mints one reads the membership `FOR SHARE`, so it
waits for the change (which holds the row `FOR UPDATE`, and writes the mark before it commits).
Auth itself refuses such tokens from the database (`users.service.authenticated_user`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_auth.sessions.errors import RevocationUnavailable
from owr_auth.sessions.service import LEEWAY_SECONDS
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger
from owr_shared.wire.redis_keys import member_revocation_key

log = get_logger(__name__)


async def cut_off(redis: Redis, settings: AuthSettings, workspace_id: uuid.UUID, user_ids: Iterable[uuid.UUID]) -> None:
    """Refuse every token these members hold for this workspace, issued until now.

    Call it after the membership row is locked or changed and before the commit: `RevocationUnavailable`
    (503) when Redis fails, so the change is rolled back rather than leaving their tokens live.
    """
    # As long as any token minted before now can live: a session's access token or an API token's JWT.
    ttl = max(settings.access_token_ttl_seconds, settings.api_token_access_ttl_seconds) + LEEWAY_SECONDS
    keys = [member_revocation_key(workspace_id, user_id) for user_id in user_ids]
    if not keys:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            now = f"{time.time():.6f}"
            for key in keys:
                pipe.set(key, now, ex=ttl)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.error("revocation_unavailable", error_type=type(exc).__name__)
        raise RevocationUnavailable() from exc
