"""`/api/v1/usage/summary`, `/daily`, `/export` and `/accounts`: the caller's workspace only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import (
    ExportEngine,
    FirstDay,
    KeyFilter,
    LastDay,
    Limits,
    ModelFilter,
    ProviderFilter,
    Settings,
    User,
)
from owr_usage.key_usage.service import resolve_range
from owr_usage.reports import service as reports
from owr_usage.reports.cursors import MAX_CURSOR_LENGTH
from owr_usage.reports.repository import SORTABLE, RowFilter
from owr_usage.reports.schemas import AccountPage, DailyPage, UsageSummary

router = APIRouter(prefix="/api/v1/usage", tags=["usage"])

SortParam = Annotated[
    str | None,
    Query(
        max_length=32,
        description=f"one of {', '.join(SORTABLE)}; `-` in front sorts descending (default `date`)",
    ),
]


Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="a `next_cursor` of this same query: the page after it (instead of `page`)",
    ),
]


@dataclass(frozen=True, slots=True)
class RowQuery:
    """The rows a request asks for, as sent: a day range and the filters and sort of `/daily` and `/export`."""

    first: date | None
    last: date | None
    key_id: uuid.UUID | None = None
    model: str | None = None
    provider: str | None = None
    sort: str | None = None

    def resolve(self, workspace_id: uuid.UUID, settings: Settings) -> RowFilter:
        """The workspace's rows of the range, defaults filled in and bounded by retention."""
        today = datetime.now(UTC).date()
        first, last = resolve_range(self.first, self.last, today=today, retention_days=settings.retention_days)
        return RowFilter(workspace_id, first, last, key_id=self.key_id, model=self.model, provider=self.provider)


async def _row_query(
    first: FirstDay = None,
    last: LastDay = None,
    key_id: KeyFilter = None,
    model: ModelFilter = None,
    provider: ProviderFilter = None,
    sort: SortParam = None,
) -> RowQuery:
    return RowQuery(first, last, key_id=key_id, model=model, provider=provider, sort=sort)


# `/daily` and `/export` take the same query; one dependency declares it.
RowQueryParams = Annotated[RowQuery, Depends(_row_query)]


@router.get(
    "/summary",
    response_model=UsageSummary,
    responses=problem_responses(401, 403, 422, 429, 503),
    summary="Totals with breakdowns by key, model and day",
)
async def get_summary(
    user: User, session: DbSession, limits: Limits, settings: Settings, first: FirstDay = None, last: LastDay = None
) -> Response:
    """Cost, BYOK cost, requests and tokens over [from, to], in total and by key, by model and by day.
    Spend without a per-model breakdown (an unlinked key, or a day whose activity was not fetched) is
    counted in `cost` and `cost_without_breakdown`, and under the `model: null` entry."""
    rows = RowQuery(first, last).resolve(user.workspace_id, settings)
    async with limits.summaries.hold(user.workspace_id):
        view = await reports.summary(session, workspace_id=user.workspace_id, first=rows.first, last=rows.last)
    return json_response(view)


@router.get(
    "/daily",
    response_model=DailyPage,
    responses=problem_responses(401, 403, 404, 422),
    summary="The daily rows behind the summary",
)
async def get_daily(
    user: User, session: DbSession, settings: Settings, query: RowQueryParams, paging: Paging, cursor: Cursor = None
) -> Response:
    """One row per key, UTC day, model and provider (or per key and day, without a breakdown). Page with
    `page`, or follow `next_cursor` (keyset: a deep page costs what the first does)."""
    rows = query.resolve(user.workspace_id, settings)
    view = await reports.daily(session, rows=rows, sort=reports.parse_sort(query.sort), paging=paging, cursor=cursor)
    return json_response(view)


_EXPORT_CONTENT = {
    200: {
        "description": "The rows, streamed",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    },
    **problem_responses(401, 403, 404, 422, 429, 503),
}


@router.get("/export", response_class=Response, responses=_EXPORT_CONTENT, summary="Export the daily rows")
async def export(
    user: User,
    session: DbSession,
    engine: ExportEngine,
    limits: Limits,
    settings: Settings,
    query: RowQueryParams,
    fmt: Annotated[reports.ExportFormat, Query(alias="format")] = "csv",
) -> Response:
    """The same rows and filters as `/daily`, all of them, streamed in constant memory. CSV: a header row,
    money as exact decimal text, text cells that could start a formula prefixed with `'`. JSON: one array of
    `/daily` row objects."""
    rows = query.resolve(user.workspace_id, settings)
    order = reports.parse_sort(query.sort)
    body = await reports.open_export(session, engine, limits, rows=rows, sort=order, fmt=fmt)
    name = f"usage-{rows.first.isoformat()}-{rows.last.isoformat()}.{fmt}"
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(
        body,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


@router.get(
    "/accounts",
    response_model=AccountPage,
    responses=problem_responses(401, 403, 422),
    summary="Each management key's balance and keys",
)
async def get_accounts(user: User, session: DbSession, paging: Paging) -> Response:
    """Per management key of the workspace: the latest balance, and the keys of its latest list with their
    limits, state, lifetime spend, share of the account's spend and the vault key each is linked to."""
    return json_response(await reports.accounts(session, workspace_id=user.workspace_id, paging=paging))
