"""The `auth.outbound_mail` table: one row per email auth asked the worker to send. It never holds a token:
a link's token is minted when the worker renders the mail, and only its hash is stored (`email_tokens`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"


class OutboundMail(CreatedAtMixin, AuthBase):
    """An email to send: its kind, to whom and about what; `pending` until the worker reports an outcome."""

    __tablename__ = "outbound_mail"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('verify_email', 'password_reset', 'invitation', 'mfa_enabled', 'mfa_disabled',"
            " 'recovery_codes_replaced', 'password_changed', 'new_sign_in')",
            name="kind",
        ),
        CheckConstraint("status IN ('pending', 'sent', 'failed', 'cancelled')", name="status"),
        # The cron's search for mails whose job was lost reads pending rows only.
        Index("ix_outbound_mail_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # The account the mail is for, when there is one (an invitation may go to an address with no account).
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    # The row the mail is about, for kinds that have one (an invitation's id, a new sign-in's session).
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING, server_default=PENDING)
    renders: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    rendered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(200), nullable=True)
