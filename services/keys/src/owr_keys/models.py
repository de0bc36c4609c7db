"""Declarative base bound to the `keys` schema; every keys table hangs off its metadata."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData

from owr_shared.db import Base, schema_metadata

SCHEMA = "keys"


class KeysBase(Base):
    """Base of the keys service's models: schema `keys`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)


def utcnow() -> datetime:
    return datetime.now(UTC)


def target_metadata() -> MetaData:
    """The metadata with every keys model registered (for Alembic)."""
    # Imported for their side effect of adding tables to the metadata.
    from owr_keys.audit import models as _audit  # noqa: F401
    from owr_keys.keys import models as _keys  # noqa: F401

    return KeysBase.metadata
