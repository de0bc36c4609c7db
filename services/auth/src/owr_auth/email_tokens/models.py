"""The `auth.email_tokens` table: the hashes of the one-time tokens in verification and reset emails."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, new_id


class EmailToken(AuthBase):
    """One emailed link: for whom, for what, until when; `used_at` once it worked (it never works again)."""

    __tablename__ = "email_tokens"
    __table_args__ = (CheckConstraint("purpose IN ('verify_email', 'password_reset')", name="purpose"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    # The mail that carried it: a mail rendered again (its job retried) replaces its earlier token.
    mail_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("auth.outbound_mail.id", ondelete="SET NULL"), nullable=True, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    # Minted at this time (the clock of the render, not the insert), so a later password change outdates it.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
