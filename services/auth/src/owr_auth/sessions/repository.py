"""SQL for refresh-token families and tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.sessions.models import RefreshToken, RefreshTokenFamily


class RefreshTokenRepository:
    """Families and tokens; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_family(
        self, user_id: uuid.UUID, *, user_agent: str | None = None, ip: str | None = None
    ) -> RefreshTokenFamily:
        family = RefreshTokenFamily(
            id=uuid.uuid4(), user_id=user_id, user_agent=user_agent, ip=ip, last_used_at=utcnow()
        )
        self.session.add(family)
        await self.session.flush()
        return family

    async def get_family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None:
        return await self.session.get(RefreshTokenFamily, family_id)

    async def sign_in_history(self, user_id: uuid.UUID, user_agent: str | None) -> tuple[bool, bool]:
        """Whether the user has had any session, and one whose client was this user agent when it last signed
        in or refreshed (a missing user agent matches a missing one)."""
        of_user = RefreshTokenFamily.user_id == user_id
        same_agent = RefreshTokenFamily.user_agent.is_not_distinct_from(user_agent)
        result = await self.session.execute(select(exists().where(of_user), exists().where(of_user, same_agent)))
        any_session, seen = result.one()
        return bool(any_session), bool(seen)

    async def record_use(
        self, family: RefreshTokenFamily, *, at: datetime, user_agent: str | None, ip: str | None
    ) -> None:
        """A refresh: the session was used now, by this client."""
        family.last_used_at = at
        family.user_agent = user_agent
        family.ip = ip
        await self.session.flush()

    async def live_page(
        self, user_id: uuid.UUID, *, now: datetime, offset: int, limit: int
    ) -> tuple[list[RefreshTokenFamily], int]:
        """A user's sessions that can still refresh (not revoked, with an unrotated unexpired token), most
        recently used first, and how many there are."""
        live = (
            select(RefreshToken.id)
            .where(
                RefreshToken.family_id == RefreshTokenFamily.id,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .exists()
        )
        where = (RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None), live)
        total = await self.session.execute(select(func.count()).select_from(RefreshTokenFamily).where(*where))
        rows = await self.session.execute(
            select(RefreshTokenFamily)
            .where(*where)
            .order_by(
                func.coalesce(RefreshTokenFamily.last_used_at, RefreshTokenFamily.created_at).desc(),
                RefreshTokenFamily.id,
            )
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total.scalar_one())

    async def revoke_users_family(self, user_id: uuid.UUID, family_id: uuid.UUID, *, reason: str, at: datetime) -> bool:
        """Revoke one live session of this user; False when it is not theirs, gone or already ended."""
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(
                RefreshTokenFamily.id == family_id,
                RefreshTokenFamily.user_id == user_id,
                RefreshTokenFamily.revoked_at.is_(None),
            )
            .values(revoked_at=at, revoked_reason=reason)
            .returning(RefreshTokenFamily.id)
        )
        return result.first() is not None

    async def add_token(self, family_id: uuid.UUID, token_hash: bytes, expires_at: datetime) -> RefreshToken:
        token = RefreshToken(id=uuid.uuid4(), family_id=family_id, token_hash=token_hash, expires_at=expires_at)
        self.session.add(token)
        await self.session.flush()
        return token

    async def family_id_for(self, token_hash: bytes) -> uuid.UUID | None:
        """The family of a token, read without locks (the caller locks the family next)."""
        result = await self.session.execute(select(RefreshToken.family_id).where(RefreshToken.token_hash == token_hash))
        return result.scalar_one_or_none()

    async def lock_family(self, family_id: uuid.UUID) -> RefreshTokenFamily | None:
        """Load the family `FOR UPDATE`: every refresh, reuse check and logout of it runs one at a time."""
        result = await self.session.execute(
            select(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get_token(self, token_hash: bytes) -> RefreshToken | None:
        """The token's current row; read after `lock_family`, it reflects any committed rotation."""
        result = await self.session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def mark_rotated(self, token: RefreshToken, at: datetime) -> None:
        token.rotated_at = at
        await self.session.flush()

    async def revoke_family(self, family_id: uuid.UUID, *, reason: str, at: datetime) -> bool:
        """Revoke one family; False when it was already revoked or does not exist."""
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
            .returning(RefreshTokenFamily.id)
        )
        return result.first() is not None

    async def revoke_all_for_user(
        self, user_id: uuid.UUID, *, reason: str, at: datetime, keep: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Revoke every live family of a user (but `keep`); returns their ids (the `sid`s to deny)."""
        result = await self.session.execute(
            update(RefreshTokenFamily)
            .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))
            .where(RefreshTokenFamily.id != keep if keep is not None else true())
            .values(revoked_at=at, revoked_reason=reason)
            .returning(RefreshTokenFamily.id)
        )
        return [row[0] for row in result.all()]

    async def retire_tokens(self, family_id: uuid.UUID, at: datetime) -> None:
        """Mark every unused token of the family rotated (a switch replaces them; reuse is then theft)."""
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.rotated_at.is_(None))
            .values(rotated_at=at)
        )

    async def is_live(self, family_id: uuid.UUID) -> bool:
        """Whether a session (family) exists and is not revoked."""
        revoked_at = await self.session.execute(
            select(RefreshTokenFamily.revoked_at).where(RefreshTokenFamily.id == family_id)
        )
        row = revoked_at.first()
        return row is not None and row[0] is None
