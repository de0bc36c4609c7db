"""Declarative base bound to the `usage` schema; the service's tables arrive with their issue."""

from __future__ import annotations

from sqlalchemy import MetaData

from owr_shared.db import Base

SCHEMA = "usage"


class UsageBase(Base):
    __abstract__ = True
    metadata = MetaData(schema=SCHEMA)
