"""`GET /api/v1/metrics`: the caller's workspace as Prometheus text (an API token needs `usage:read`)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.schemas import problem_responses
from owr_usage.dependencies import User
from owr_usage.workspace_metrics import service

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])


@router.get(
    "",
    response_class=Response,
    responses={200: {"content": {service.CONTENT_TYPE: {}}}, **problem_responses(401, 403)},
    summary="The workspace's keys and accounts as Prometheus text",
)
async def workspace_metrics(user: User, session: DbSession) -> Response:
    """Per key (`key_id`, `key_name`): spend today, this week and this month (UTC), limit, remaining, seconds
    until reset, status, age of the latest sync; per account: balance and runway. Only this workspace."""
    body = await service.exposition(session, workspace_id=user.workspace_id, now=datetime.now(UTC))
    return Response(content=body, media_type=service.CONTENT_TYPE)
