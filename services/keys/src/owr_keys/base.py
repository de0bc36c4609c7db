"""The keys declarative base (schema `keys`) and `utcnow`; it imports no domain: `owr_keys.tables` registers the tables."""

from __future__ import annotations

from owr_shared.db import Base, schema_metadata, utcnow

__all__ = ["SCHEMA", "KeysBase", "utcnow"]

SCHEMA = "keys"


class KeysBase(Base):
    """Base of the keys service's models: schema `keys`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)
