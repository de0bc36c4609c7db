"""The person's own sessions: list them, end one, end them all (each one's access tokens at once, by `sid`)."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.sessions.errors import SessionNotFound
from owr_auth.sessions.models import RefreshTokenFamily
from owr_auth.sessions.repository import RefreshTokenRepository
from owr_auth.sessions.schemas import SessionView
from owr_auth.sessions.service import deny_sessions
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger

log = get_logger(__name__)


def session_view(family: RefreshTokenFamily, *, current_sid: str | None) -> SessionView:
    return SessionView(
        id=family.id,
        created_at=family.created_at,
        last_used_at=family.last_used_at,
        user_agent=family.user_agent,
        ip=family.ip,
        current=current_sid == str(family.id),
    )


async def page_of_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, current_sid: str | None, offset: int, limit: int
) -> tuple[list[SessionView], int]:
    """The user's sessions that can still refresh, most recently used first."""
    families, total = await RefreshTokenRepository(session).live_page(user_id, now=utcnow(), offset=offset, limit=limit)
    return [session_view(f, current_sid=current_sid) for f in families], total


async def revoke_session(
    session: AsyncSession, redis: Redis, settings: AuthSettings, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> None:
    """End one of the user's sessions: its refresh token and, at once, its access tokens (`sid`).

    Another user's session, or one already ended, is `SessionNotFound` (404); 503 (rolled back) when the
    denial cannot be recorded.
    """
    repo = RefreshTokenRepository(session)
    if not await repo.revoke_users_family(user_id, session_id, reason="revoked", at=utcnow()):
        raise SessionNotFound()
    await deny_sessions(redis, settings, [session_id])
    log.info("session_revoked", user_id=str(user_id), family_id=str(session_id))


async def revoke_all_sessions(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    *,
    user_id: uuid.UUID,
    keep: uuid.UUID | None = None,
) -> int:
    """End every session of the user (but `keep`), each one's access tokens at once by its `sid`; API tokens
    are left alone (`DELETE /api/v1/auth/me/sessions` ends those too). How many ended."""
    revoked = await RefreshTokenRepository(session).revoke_all_for_user(
        user_id, reason="revoke_all", at=utcnow(), keep=keep
    )
    await deny_sessions(redis, settings, revoked)
    log.info("sessions_revoked", user_id=str(user_id), families=len(revoked), reason="revoke_all")
    return len(revoked)
