"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncEngine

from owr_shared.auth import UserCaller, require_scope, user_with_scope
from owr_shared.dependencies import from_state
from owr_shared.envelope import Envelope
from owr_usage.reports.service import ReportLimits
from owr_usage.settings import UsageSettings

__all__ = [
    "AlertsReader",
    "AlertsWriter",
    "ChannelVault",
    "Clock",
    "ExportEngine",
    "Limits",
    "Settings",
    "User",
    "UserCaller",
    "require_scope",
]

# Every public usage route reads: a signed-in user may, an API-token caller needs `usage:read`.
User = Annotated[UserCaller, Depends(user_with_scope("usage:read"))]
Settings = Annotated[UsageSettings, Depends(from_state("settings"))]
# The exports' own pool and the concurrency limits of the expensive reads (`reports_capacity` in app.py).
ExportEngine = Annotated[AsyncEngine, Depends(from_state("export_engine"))]
Limits = Annotated[ReportLimits, Depends(from_state("report_limits"))]

# Budgets, alerts and channels: a signed-in user may do everything; an API-token caller needs `alerts:read` to
# read and `alerts:write` to change anything.
AlertsReader = Annotated[UserCaller, Depends(user_with_scope("alerts:read"))]
AlertsWriter = Annotated[UserCaller, Depends(user_with_scope("alerts:write"))]
# The envelope of channels' sealed values (`USAGE_KEKS`), and the clock deliveries and rotations read (tests
# replace it on `app.state.clock` to move time).
ChannelVault = Annotated[Envelope, Depends(from_state("channel_envelope"))]
Clock = Annotated[Callable[[], datetime], Depends(from_state("clock"))]
