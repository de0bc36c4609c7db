"""`/api/v1/insights/anomalies`: the workspace's anomalies per key and day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import json_response, problem_responses
from owr_usage.anomalies import service as anomalies
from owr_usage.anomalies.schemas import AnomalyPage
from owr_usage.dependencies import FirstDay, LastDay, Settings, User
from owr_usage.key_usage.service import resolve_range

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])


@router.get(
    "/anomalies",
    response_model=AnomalyPage,
    responses=problem_responses(401, 403, 404, 422),
    summary="Days a key departed from its own history: spend spikes, dormant keys waking, new models, divergences",
)
async def get_anomalies(
    user: User,
    session: DbSession,
    settings: Settings,
    paging: Paging,
    first: FirstDay = None,
    last: LastDay = None,
    key_id: Annotated[uuid.UUID | None, Query(description="only this key's (404 when not of this workspace)")] = None,
) -> Response:
    """The caller's workspace only, newest day first, a page at a time (`page`, `per_page`; `total` counts them
    all). `from` after `to`, or before the retention window, is a 422 `invalid-range`."""
    first, last = resolve_range(first, last, today=datetime.now(UTC).date(), retention_days=settings.retention_days)
    found = await anomalies.listing(
        session, workspace_id=user.workspace_id, first=first, last=last, key_id=key_id, paging=paging
    )
    return json_response(found)
