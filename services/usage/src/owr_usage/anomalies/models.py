"""Table `usage.key_anomalies`: one row per (workspace, key, day, kind) found, so re-ingestion never repeats one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Double, Index, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import UsageBase, utcnow


class KeyAnomaly(UsageBase):
    """An anomaly of a key's day: its `score` (severity) and `evidence` (the figures it was judged on), raised
    higher when a later figure of the same day scores higher (today's provisional spend keeps growing)."""

    __tablename__ = "key_anomalies"
    __table_args__ = (Index("ix_key_anomalies_workspace_day", "workspace_id", "day"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    score: Mapped[float] = mapped_column(Double, nullable=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    detected_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
