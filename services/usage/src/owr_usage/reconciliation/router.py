"""`/api/v1/insights/reconciliation`: where a linked key's snapshot-derived spend and activity disagree."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import Limits, Settings, User
from owr_usage.reconciliation import service as reconciliation
from owr_usage.reconciliation.schemas import ReconciliationPage

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])


@router.get(
    "/reconciliation",
    response_model=ReconciliationPage,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    summary="Completed days where a key's snapshot spend and activity's sum differ by more than 1e-6 USD",
)
async def get_reconciliation(
    user: User,
    session: DbSession,
    limits: Limits,
    settings: Settings,
    paging: Paging,
    first: Annotated[
        date | None, Query(alias="from", description="first UTC day (default: 29 days before `to`)")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="last UTC day (default: yesterday, the last completed day)")
    ] = None,
    key_id: Annotated[uuid.UUID | None, Query(description="only this key (a key of the workspace)")] = None,
) -> Response:
    """For every linked key and completed UTC day with both figures (a final `/key` delta and a fetched
    activity day), the two are compared; days whose spend or BYOK spend differ by more than 1e-6 USD are
    listed. Today is never listed (provisional); the range spans at most 366 days, within retention. Counted
    in the workspace's share of expensive reads, with `/usage/summary` (429 with Retry-After over it)."""
    today = datetime.now(UTC).date()
    first, last = reconciliation.resolve_range(first, last, today=today, retention_days=settings.retention_days)
    async with limits.summaries.hold(user.workspace_id):
        page = await reconciliation.report(
            session, workspace_id=user.workspace_id, first=first, last=last, today=today, key_id=key_id, paging=paging
        )
    return json_response(page)
