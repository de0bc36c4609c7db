"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from owr_shared.auth import Role, UserCaller, check_email_verified, require_role, require_scope
from owr_shared.dependencies import from_state
from owr_shared.envelope import Envelope
from owr_shared.schemas import StorableText
from owr_shared.wall import Wall, declare
from owr_usage.channels.confirmation import workspace_of
from owr_usage.channels.errors import RECEIVE_ALERTS
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.schemas import ConfirmChannelRequest
from owr_usage.reports.service import ReportLimits
from owr_usage.settings import UsageSettings

__all__ = [
    "RECEIVE_ALERTS",
    "AlertSender",
    "AlertsReader",
    "AlertsWriter",
    "ChannelTests",
    "ChannelVault",
    "Clock",
    "ConfirmationToken",
    "ExportEngine",
    "FirstDay",
    "KeyActionsReader",
    "KeyActionsWriter",
    "KeyFilter",
    "LastDay",
    "Limits",
    "ModelFilter",
    "ProviderFilter",
    "Settings",
    "User",
    "UserCaller",
    "require_scope",
]

# Every public usage route reads: any member may (the JWT's role), an API-token caller needs `usage:read`.
User = Annotated[UserCaller, Depends(require_role(Role.viewer, "usage:read"))]
Settings = Annotated[UsageSettings, Depends(from_state("settings"))]
# The reads' day range (`key_usage.service.resolve_range` applies the defaults and checks it).
FirstDay = Annotated[date | None, Query(alias="from", description="first UTC day (default: 29 days before `to`)")]
LastDay = Annotated[date | None, Query(alias="to", description="last UTC day (default: today)")]
# The row filters of `/usage/daily`, `/export` and `/insights/prices`. Storable text: a NUL (which PostgreSQL
# text cannot hold) is a 422, never a 500.
KeyFilter = Annotated[uuid.UUID | None, Query(description="only this key's rows (a key of the workspace)")]
ModelFilter = Annotated[StorableText | None, Query(max_length=300, description="only this model's rows (exact name)")]
ProviderFilter = Annotated[
    StorableText | None, Query(max_length=300, description="only this provider's rows (exact name)")
]
# The exports' own pool and the concurrency limits of the expensive reads (`reports_capacity` in app.py).
ExportEngine = Annotated[AsyncEngine, Depends(from_state("export_engine"))]
Limits = Annotated[ReportLimits, Depends(from_state("report_limits"))]

# Budgets, alerts and channels: every member reads them (an API token with `alerts:read`); changing any of
# them is an admin's (an API token with `alerts:write`, minted by an admin).
AlertsReader = Annotated[UserCaller, Depends(require_role(Role.viewer, "alerts:read"))]
AlertsWriter = Annotated[UserCaller, Depends(require_role(Role.admin, "alerts:write"))]

# Issue 16: whoever points alerts somewhere (creates a channel, sends it a test or retries a delivery; and,
# in `channels.service.update_channel`, enables one or changes its target or events) must have a verified
# address (the JWT's `email_verified`), else 403 `email-not-verified`.


async def _alert_sender(user: AlertsWriter) -> UserCaller:
    check_email_verified(user, RECEIVE_ALERTS)
    return user


AlertSender = Annotated[UserCaller, Depends(_alert_sender)]
# The envelope of channels' sealed values (`USAGE_KEKS`), and the clock deliveries and rotations read (tests
# replace it on `app.state.clock` to move time).
ChannelVault = Annotated[Envelope, Depends(from_state("channel_envelope"))]
ChannelTests = Annotated[ChannelTestLimit, Depends(from_state("channel_test_limit"))]
Clock = Annotated[Callable[[], datetime], Depends(from_state("clock"))]

# Writes to OpenRouter on a key (key actions): an admin's, as changing a key is in keys (an API token with
# `keys:write`); every member sees the key's upstream state (`keys:read`).
KeyActionsReader = Annotated[UserCaller, Depends(require_role(Role.viewer, "keys:read"))]
KeyActionsWriter = Annotated[UserCaller, Depends(require_role(Role.admin, "keys:write"))]


async def _confirmation_token(request: Request, body: ConfirmChannelRequest) -> str:
    """An emailed confirmation link's token, from a caller who needs no account: the request's transaction sees
    only the workspace the token names (400 `invalid-link` when it is malformed)."""
    declare(request, Wall(workspace_id=workspace_of(body.token)))
    return body.token


ConfirmationToken = Annotated[str, Depends(_confirmation_token)]
