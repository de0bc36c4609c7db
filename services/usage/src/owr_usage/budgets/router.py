"""`/api/v1/budgets*`: the workspace's budgets with their current period. Another workspace's budget is a 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import json_response, problem_responses
from owr_usage.budgets import service as budgets
from owr_usage.budgets.schemas import BudgetPage, BudgetView, CreateBudgetRequest, UpdateBudgetRequest
from owr_usage.dependencies import AlertsReader, AlertsWriter

router = APIRouter(prefix="/api/v1/budgets", tags=["budgets"])

_ITEM_ERRORS = problem_responses(401, 403, 404, 422)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BudgetView,
    responses=problem_responses(400, 401, 403, 422),
    summary="Create a budget",
)
async def create_budget(body: CreateBudgetRequest, user: AlertsWriter, session: DbSession) -> Response:
    """An amount of USD per UTC period (days from 00:00, weeks from Monday, months from the 1st) for the
    workspace, one key or one account. What its current figure already calls for is raised at once."""
    view = await budgets.create(session, workspace_id=user.workspace_id, body=body, now=datetime.now(UTC))
    return json_response(view, status.HTTP_201_CREATED)


@router.get(
    "", response_model=BudgetPage, responses=problem_responses(401, 403, 422), summary="The workspace's budgets"
)
async def list_budgets(user: AlertsReader, session: DbSession, paging: Paging) -> Response:
    """Newest first, each with its current period's spend, forecast and state, as of OpenRouter's clock at the
    workspace's latest sync."""
    view = await budgets.page(session, workspace_id=user.workspace_id, paging=paging, now=datetime.now(UTC))
    return json_response(view)


@router.get("/{budget_id}", response_model=BudgetView, responses=_ITEM_ERRORS, summary="One budget")
async def get_budget(budget_id: uuid.UUID, user: AlertsReader, session: DbSession) -> Response:
    view = await budgets.get(session, workspace_id=user.workspace_id, budget_id=budget_id, now=datetime.now(UTC))
    return json_response(view)


@router.patch(
    "/{budget_id}",
    response_model=BudgetView,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Change a budget",
)
async def update_budget(
    budget_id: uuid.UUID, body: UpdateBudgetRequest, user: AlertsWriter, session: DbSession
) -> Response:
    """Fields left out (or null) stay as they are; the scope is fixed. The budget is evaluated again: a raised
    amount reports an exceeded budget's recovery, a lowered one may cross thresholds."""
    view = await budgets.update(
        session, workspace_id=user.workspace_id, budget_id=budget_id, body=body, now=datetime.now(UTC)
    )
    return json_response(view)


@router.delete(
    "/{budget_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ITEM_ERRORS, summary="Delete a budget"
)
async def delete_budget(budget_id: uuid.UUID, user: AlertsWriter, session: DbSession) -> None:
    """Its events stay in the alert history."""
    await budgets.delete(session, workspace_id=user.workspace_id, budget_id=budget_id)
