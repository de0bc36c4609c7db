"""`/api/v1/insights/prices`: effective USD per million tokens per model and provider, and their drift."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import FirstDay, KeyFilter, LastDay, Limits, ModelFilter, ProviderFilter, Settings, User
from owr_usage.key_usage.service import resolve_range
from owr_usage.prices import service as prices
from owr_usage.prices.schemas import GroupBy, PricesReport
from owr_usage.reports.service import check_key

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])

GroupParam = Annotated[
    GroupBy | None,
    Query(description="`model` (default): a row per model and provider; `key`: per model, provider and key"),
]


@router.get(
    "/prices",
    response_model=PricesReport,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    summary="Effective USD per million tokens per model and provider, and their drift",
)
async def get_prices(
    user: User,
    session: DbSession,
    limits: Limits,
    settings: Settings,
    paging: Paging,
    first: FirstDay = None,
    last: LastDay = None,
    key_id: KeyFilter = None,
    model: ModelFilter = None,
    provider: ProviderFilter = None,
    group_by: GroupParam = None,
) -> Response:
    """From activity's daily rows in [from, to] (linked keys' per-model figures; days without a breakdown name
    no model and are left out): the blended price, the prompt/completion split when the rows determine it, and
    the drift against the period of the same length just before. Per key with `key_id` or `group_by=key`.
    Counted in the workspace's share of expensive reads, with `/usage/summary` (429 with Retry-After over it)."""
    first, last = resolve_range(first, last, today=datetime.now(UTC).date(), retention_days=settings.retention_days)
    await check_key(session, user.workspace_id, key_id)
    async with limits.summaries.hold(user.workspace_id):
        view = await prices.report(
            session,
            workspace_id=user.workspace_id,
            first=first,
            last=last,
            key_id=key_id,
            model=model,
            provider=provider,
            by_key=group_by == "key" or key_id is not None,
            paging=paging,
        )
    return json_response(view)
