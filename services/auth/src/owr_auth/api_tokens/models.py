"""The `auth.api_tokens` table: personal API tokens, stored as HMAC-SHA-256 only."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id


class ApiToken(CreatedAtMixin, AuthBase):
    """A token a user made for their own tools: what it may do (`scopes`) in which workspace, until when."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name="role"),
        Index("ix_api_tokens_workspace_id", "workspace_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.workspaces.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)), nullable=False)
    # The minter's role when it was made: the most it can do, lowered further by the membership now.
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    # Requests per minute at the gateway; null means the gateway's default for tokens.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def __repr__(self) -> str:
        return f"ApiToken(id={self.__dict__.get('id')!r}, prefix={self.__dict__.get('prefix')!r}, token_hash=***)"
