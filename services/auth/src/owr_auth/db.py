"""Declarative base bound to the `auth` schema; every auth table hangs off its metadata."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_shared.db import Base, schema_metadata

SCHEMA = "auth"


class AuthBase(Base):
    """Base of the auth service's models: schema `auth`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


def target_metadata() -> MetaData:
    """The metadata with every auth model registered (for Alembic)."""
    # Imported for their side effect of adding tables to the metadata.
    from owr_auth.api_tokens import models as _api_tokens  # noqa: F401
    from owr_auth.sessions import models as _sessions  # noqa: F401
    from owr_auth.users import models as _users  # noqa: F401
    from owr_auth.workspaces import models as _workspaces  # noqa: F401

    return AuthBase.metadata
