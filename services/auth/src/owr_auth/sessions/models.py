"""Refresh-token families (one per login) and their tokens (one per rotation)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id

USER_AGENT_MAX_LENGTH = 256
# An IPv6 address with a zone index fits; whatever uvicorn reports as the peer is cut to this.
IP_MAX_LENGTH = 64


class RefreshTokenFamily(CreatedAtMixin, AuthBase):
    """Every refresh token descending from one login; revoking it ends that session."""

    __tablename__ = "refresh_token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The workspace its access tokens act in (`POST /auth/switch`); null: the person's first one.
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("auth.workspaces.id", ondelete="SET NULL"), nullable=True
    )
    # The client as auth saw it at the sign-in and at each refresh since (the session list shows them).
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX_LENGTH), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(IP_MAX_LENGTH), nullable=True)


class RefreshToken(CreatedAtMixin, AuthBase):
    """One refresh token, stored as the SHA-256 of its value; `rotated_at` is set when it is used."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.refresh_token_families.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
