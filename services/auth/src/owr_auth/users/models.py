"""The `auth.users` table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, String, Text, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id, utcnow


class User(CreatedAtMixin, AuthBase):
    """A person who logs in; `email` is stored normalised (NFKC, lowercase), so it is unique as is."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    # Set when the person follows the link of a verification (or password-reset) email; accounts that
    # existed before verification did were marked verified at their creation (migration 0005).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set when the person deletes the account: from then on nobody can sign in as them, and the row goes
    # once every other service has erased their workspaces (at once, or by the sweep if one was away).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
