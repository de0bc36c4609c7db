"""A user's TOTP credential (sealed secret, last used time-step) and their one-time recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, LargeBinary, String, UniqueConstraint, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id, utcnow


class TotpCredential(CreatedAtMixin, AuthBase):
    """One per user: pending until `enabled_at` is set (setup, then a first valid code)."""

    __tablename__ = "totp_credentials"

    def __repr__(self) -> str:
        # Never the sealed bytes, even in a traceback's locals.
        return f"TotpCredential(user_id={self.user_id}, kek_version={self.kek_version!r}, enabled_at={self.enabled_at})"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), primary_key=True)
    # The secret sealed with the envelope scheme under `AUTH_KEKS`, bound to the user (`mfa/sealing.py`).
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dek_nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    kek_version: Mapped[str] = mapped_column(String(32), nullable=False)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The time-step (unix time // 30) of the last accepted code: a code of this step or an earlier one is
    # refused, so a code works once, whatever it is used for.
    last_used_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class RecoveryCode(CreatedAtMixin, AuthBase):
    """A one-time recovery code, stored as HMAC-SHA-256 under `AUTH_RECOVERY_CODE_PEPPER`."""

    __tablename__ = "recovery_codes"
    # Also the index of a user's codes (its leading column).
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
