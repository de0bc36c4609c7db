"""`/api/v1/alerts`: the workspace's alert history, newest first."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses
from owr_usage.alerts import service as alert_service
from owr_usage.alerts.schemas import AlertEventView
from owr_usage.dependencies import AlertsReader

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


@router.get(
    "",
    response_model=Page[AlertEventView],
    responses=problem_responses(401, 403, 422),
    summary="The workspace's alert events",
)
async def list_alerts(user: AlertsReader, session: DbSession, paging: Paging) -> Response:
    """Every event raised for the workspace, newest first, with each channel's delivery status and attempts."""
    items, total = await alert_service.list_events(session, workspace_id=user.workspace_id, paging=paging)
    return json_response(Page[AlertEventView](items=items, total=total, page=paging.page, per_page=paging.per_page))
