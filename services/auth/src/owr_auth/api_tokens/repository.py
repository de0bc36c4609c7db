"""SQL for API tokens; callers own the transaction. User-facing lookups always filter by the owner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.api_tokens.models import ApiToken


class ApiTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> ApiToken:
        token = ApiToken(**values)
        self.session.add(token)
        await self.session.flush()
        return token

    async def page(self, user_id: uuid.UUID, *, offset: int, limit: int) -> tuple[Sequence[ApiToken], int]:
        """The user's tokens that are not revoked, newest first."""
        where = (ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        total = await self.session.scalar(select(func.count()).select_from(ApiToken).where(*where))
        rows = await self.session.scalars(
            select(ApiToken).where(*where).order_by(ApiToken.created_at.desc(), ApiToken.id).offset(offset).limit(limit)
        )
        return rows.all(), int(total or 0)

    async def get_for_user(self, user_id: uuid.UUID, token_id: uuid.UUID) -> ApiToken | None:
        """A live (not revoked) token of this user, locked for the change the caller makes."""
        return (
            await self.session.scalars(
                select(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                .with_for_update()
            )
        ).one_or_none()

    async def by_hash(self, token_hash: bytes) -> ApiToken | None:
        return (await self.session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash))).one_or_none()

    async def count_live(self, user_id: uuid.UUID, now: datetime) -> int:
        """The user's tokens that still work (not revoked, not expired); the user row is locked first by
        the caller, so two creations cannot both pass the cap."""
        total = await self.session.scalar(
            select(func.count())
            .select_from(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)
        )
        return int(total or 0)

    async def revoke_all_for_user(self, user_id: uuid.UUID, at: datetime) -> list[bytes]:
        """Revoke every live token of a user; returns their hashes (to purge the gateway's cache)."""
        result = await self.session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(ApiToken.token_hash)
        )
        return [row[0] for row in result.all()]

    async def revoke_in_workspace(
        self, workspace_id: uuid.UUID, at: datetime, *, user_id: uuid.UUID | None = None
    ) -> list[bytes]:
        """Revoke every live token acting in a workspace (only `user_id`'s when given); returns their hashes."""
        where = [ApiToken.workspace_id == workspace_id, ApiToken.revoked_at.is_(None)]
        if user_id is not None:
            where.append(ApiToken.user_id == user_id)
        result = await self.session.execute(
            update(ApiToken).where(*where).values(revoked_at=at).returning(ApiToken.token_hash)
        )
        return [row[0] for row in result.all()]

    async def hashes_for_user(self, user_id: uuid.UUID) -> Sequence[bytes]:
        rows = await self.session.scalars(select(ApiToken.token_hash).where(ApiToken.user_id == user_id))
        return rows.all()

    async def touch(self, token_id: uuid.UUID, when: datetime) -> bool:
        """Record a use of a token that is not revoked; False when it is (or is gone). Never moves
        `last_used_at` backwards."""
        result = await self.session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(last_used_at=func.greatest(func.coalesce(ApiToken.last_used_at, when), when))
            .returning(ApiToken.id)
        )
        return result.first() is not None
