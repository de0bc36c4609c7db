"""`/api/v1/insights/hygiene`: the workspace's key hygiene report."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import User
from owr_usage.insights import service as insights_service
from owr_usage.insights.schemas import HygieneReport

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])


@router.get(
    "/hygiene",
    response_model=HygieneReport,
    responses=problem_responses(401, 403),
    summary="Keys without a limit, dormant, expiring, invalid, unlisted, untracked or not synced",
)
async def get_hygiene(user: User, session: DbSession) -> Response:
    """The caller's workspace only; `no_limit` findings of keys with spend carry suggested limits
    (the p95 of the spend per day, week and month over 90 days, times 1.5)."""
    report = await insights_service.hygiene(session, workspace_id=user.workspace_id, now=datetime.now(UTC))
    return json_response(report)
