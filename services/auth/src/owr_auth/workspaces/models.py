"""The `auth.workspaces` and `auth.memberships` tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, Uuid, false, text
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, CreatedAtMixin, new_id
from owr_shared.auth import Role

__all__ = ["Membership", "Role", "Workspace"]


class Workspace(CreatedAtMixin, AuthBase):
    """A tenant: every key, usage row and token of other services belongs to one workspace."""

    __tablename__ = "workspaces"

    __table_args__ = (Index("ix_workspaces_deleted_at", "deleted_at", postgresql_where=text("deleted_at IS NOT NULL")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # Made at registration: its person always owns it (no transfer), and it goes only with their account.
    personal: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    # Set when its deletion began: its data is being erased in the other services; the row goes after.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Membership(CreatedAtMixin, AuthBase):
    """A user's role in a workspace; each workspace has exactly one owner."""

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name="role"),
        Index("uq_memberships_one_owner", "workspace_id", unique=True, postgresql_where=text("role = 'owner'")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("auth.users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.workspaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
