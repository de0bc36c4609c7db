"""`/api/v1/usage/keys/{key_id}`: one key's figures. Another workspace's key is a 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import FirstDay, LastDay, Settings, User
from owr_usage.key_usage import service as usage_service
from owr_usage.key_usage.schemas import KeyUsageView

router = APIRouter(prefix="/api/v1/usage", tags=["usage"])


@router.get(
    "/keys/{key_id}",
    response_model=KeyUsageView,
    responses=problem_responses(401, 403, 404, 422),
    summary="One key's limits, windows and daily spend",
)
async def get_key_usage(
    key_id: uuid.UUID,
    user: User,
    session: DbSession,
    settings: Settings,
    first: FirstDay = None,
    last: LastDay = None,
) -> Response:
    """The latest snapshot's limits and day/week/month windows (`as_of`), lifetime figures, and the daily
    series in [from, to]: final days, and provisional ones (today, or a day whose next day has no snapshot)."""
    now = datetime.now(UTC)
    first, last = usage_service.resolve_range(first, last, today=now.date(), retention_days=settings.retention_days)
    view = await usage_service.key_usage(
        session, workspace_id=user.workspace_id, key_id=key_id, first=first, last=last, now=now
    )
    return json_response(view)
