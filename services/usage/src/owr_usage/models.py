"""Declarative base bound to the `usage` schema; every usage table hangs off its metadata."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData

from owr_shared.db import Base, schema_metadata

SCHEMA = "usage"


class UsageBase(Base):
    """Base of the usage service's models: schema `usage`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)


def utcnow() -> datetime:
    return datetime.now(UTC)


def target_metadata() -> MetaData:
    """The metadata with every usage model registered (for Alembic)."""
    # Imported for their side effect of adding tables to the metadata.
    from owr_usage.accounts import models as _accounts  # noqa: F401
    from owr_usage.rollups import models as _rollups  # noqa: F401
    from owr_usage.snapshots import models as _snapshots  # noqa: F401

    return UsageBase.metadata
