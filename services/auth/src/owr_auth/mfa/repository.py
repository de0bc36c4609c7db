"""SQL for TOTP credentials and recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.mfa.models import RecoveryCode, TotpCredential
from owr_shared.envelope import SealedSecret


def sealed_secret(credential: TotpCredential) -> SealedSecret:
    """What the envelope opens, from the credential's columns."""
    return SealedSecret(
        ciphertext=bytes(credential.ciphertext),
        nonce=bytes(credential.nonce),
        wrapped_dek=bytes(credential.wrapped_dek),
        dek_nonce=bytes(credential.dek_nonce),
        kek_version=credential.kek_version,
    )


def _sealed_columns(sealed: SealedSecret) -> dict[str, object]:
    return {
        "ciphertext": sealed.ciphertext,
        "nonce": sealed.nonce,
        "wrapped_dek": sealed.wrapped_dek,
        "dek_nonce": sealed.dek_nonce,
        "kek_version": sealed.kek_version,
    }


class MfaRepository:
    """A user's TOTP credential and recovery codes; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> TotpCredential | None:
        return await self.session.get(TotpCredential, user_id, populate_existing=True)

    async def lock(self, user_id: uuid.UUID) -> TotpCredential | None:
        """The credential `FOR UPDATE`: every check of a code of this user runs one at a time, so a code
        presented twice at once is accepted once."""
        result = await self.session.execute(
            select(TotpCredential)
            .where(TotpCredential.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def is_enabled(self, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            select(TotpCredential.user_id).where(
                TotpCredential.user_id == user_id, TotpCredential.enabled_at.is_not(None)
            )
        )
        return result.first() is not None

    async def put_pending(self, user_id: uuid.UUID, sealed: SealedSecret, at: datetime) -> None:
        """Start (or restart) a setup; refused by the caller when two-factor sign-in is already on."""
        values = {**_sealed_columns(sealed), "enabled_at": None, "last_used_step": None, "updated_at": at}
        await self.session.execute(
            insert(TotpCredential)
            .values(user_id=user_id, created_at=at, **values)
            .on_conflict_do_update(index_elements=[TotpCredential.user_id], set_=values)
        )

    async def reseal(self, credential: TotpCredential, sealed: SealedSecret) -> None:
        """The same secret under another KEK version (a re-wrap)."""
        for name, value in _sealed_columns(sealed).items():
            setattr(credential, name, value)
        await self.session.flush()

    async def mark_used(self, credential: TotpCredential, step: int) -> None:
        credential.last_used_step = step
        await self.session.flush()

    async def enable(self, credential: TotpCredential, at: datetime) -> None:
        credential.enabled_at = at
        await self.session.flush()

    async def remove(self, user_id: uuid.UUID) -> None:
        """Two-factor sign-in off: the credential and every recovery code go."""
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user_id))

    async def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: list[bytes]) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self.session.execute(
            insert(RecoveryCode).values(
                [{"id": uuid.uuid4(), "user_id": user_id, "code_hash": code_hash} for code_hash in code_hashes]
            )
        )

    async def use_recovery_code(self, user_id: uuid.UUID, code_hash: bytes, at: datetime) -> bool:
        """Mark an unused code used; False when no such unused code exists (it works once, even at once)."""
        result = await self.session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=at)
            .returning(RecoveryCode.id)
        )
        return result.first() is not None

    async def recovery_codes_left(self, user_id: uuid.UUID) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(result.scalar_one())
