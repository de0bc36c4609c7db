"""Tables `usage.alert_channels`, `usage.channel_secrets` and `usage.channel_audit`.

A channel's target (a webhook, Slack or Discord URL, which is itself a credential, or an email address) and a
webhook's signing secrets are sealed with the vault's envelope scheme (`owr_shared.envelope`) in
`channel_secrets`, one row per kind; `alert_channels` keeps only what may be shown (`target_hint`).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import UsageBase, utcnow

CHANNEL_TYPES = ("webhook", "slack", "discord", "email")
# `target` is the URL or the address; `secret` signs webhooks; `previous_secret` keeps signing until it expires.
SECRET_KINDS = ("target", "secret", "previous_secret")
SEALED_COLUMNS = frozenset({"ciphertext", "nonce", "wrapped_dek", "dek_nonce"})


class AlertChannel(UsageBase):
    """Where events go. `events` None takes every event type of the workspace."""

    __tablename__ = "alert_channels"
    __table_args__ = (Index("ix_alert_channels_workspace_created", "workspace_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # What a page may show of the target: the URL's scheme and host, or the address with its local part masked.
    target_hint: Mapped[str] = mapped_column(String(300), nullable=False)
    events: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The first failed attempt of the current run of failures; cleared by a success.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # An email channel's address answered its confirmation link (double opt-in); None: no mail but that link.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class ChannelSecret(UsageBase):
    """One sealed value of a channel; its repr never shows the envelope."""

    __tablename__ = "channel_secrets"

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dek_nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    kek_version: Mapped[str] = mapped_column(String(32), nullable=False)
    # Set on `previous_secret`: it stops signing then.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def __repr__(self) -> str:
        shown = ("channel_id", "kind", "workspace_id", "kek_version", "expires_at")
        parts = [f"{name}={self.__dict__.get(name)!r}" for name in shown]
        parts += [f"{name}=***" for name in sorted(SEALED_COLUMNS)]
        return f"ChannelSecret({', '.join(parts)})"


class ChannelConfirmation(UsageBase):
    """The one-time token of an email channel's confirmation link, as its SHA-256: minted when the worker claims
    the confirmation email, replaced by the next one, deleted when used."""

    __tablename__ = "channel_confirmations"

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    def __repr__(self) -> str:
        return f"ChannelConfirmation(channel_id={self.__dict__.get('channel_id')!r}, token_hash=***)"


class ChannelAudit(UsageBase):
    """Who did what to a channel's sealed values: created, revealed (to the worker), rotated, disabled, deleted,
    confirmed (an email channel's address, by its link)."""

    __tablename__ = "channel_audit"
    __table_args__ = (
        Index("ix_channel_audit_channel_at", "channel_id", "at"),
        Index("ix_channel_audit_workspace_at", "workspace_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    # A user id, or the service token's subject (`worker`).
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
