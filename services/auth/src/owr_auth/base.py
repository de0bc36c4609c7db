"""The auth declarative base (schema `auth`), `utcnow` and the column helpers every auth model uses.

It imports no domain: `owr_auth.tables` registers the tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_shared.db import Base, schema_metadata, utcnow

__all__ = ["SCHEMA", "AuthBase", "CreatedAtMixin", "new_id", "utcnow"]

SCHEMA = "auth"


class AuthBase(Base):
    """Base of the auth service's models: schema `auth`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
