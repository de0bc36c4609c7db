"""The usage declarative base (schema `usage`) and `utcnow`; it imports no domain: `owr_usage.tables` registers the tables."""

from __future__ import annotations

from owr_shared.db import Base, schema_metadata, utcnow

__all__ = ["SCHEMA", "UsageBase", "utcnow"]

SCHEMA = "usage"


class UsageBase(Base):
    """Base of the usage service's models: schema `usage`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)
