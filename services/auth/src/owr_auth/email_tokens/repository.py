"""SQL for emailed one-time tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.email_tokens.models import EmailToken
from owr_shared.repository import deleted_rows


class EmailTokenRepository:
    """Emailed tokens; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        user_id: uuid.UUID,
        purpose: str,
        mail_id: uuid.UUID | None,
        token_hash: bytes,
        created_at: datetime,
        expires_at: datetime,
    ) -> EmailToken:
        token = EmailToken(
            id=uuid.uuid4(),
            user_id=user_id,
            purpose=purpose,
            mail_id=mail_id,
            token_hash=token_hash,
            created_at=created_at,
            expires_at=expires_at,
        )
        self.session.add(token)
        await self.session.flush()
        return token

    async def lock_by_hash(self, token_hash: bytes) -> EmailToken | None:
        """The token's row, locked until the transaction ends: two uses of one link run one after the other."""
        result = await self.session.execute(
            select(EmailToken)
            .where(EmailToken.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def discard_unused_of_mail(self, mail_id: uuid.UUID) -> int:
        """Forget the mail's tokens that were never used (it is being rendered again, or gave up)."""
        return await deleted_rows(
            self.session, delete(EmailToken).where(EmailToken.mail_id == mail_id, EmailToken.used_at.is_(None))
        )

    async def discard_unused_for_user(self, user_id: uuid.UUID, purpose: str) -> int:
        """Forget the user's other links of a purpose once one of them worked."""
        return await deleted_rows(
            self.session,
            delete(EmailToken).where(
                EmailToken.user_id == user_id, EmailToken.purpose == purpose, EmailToken.used_at.is_(None)
            ),
        )
