"""The workspace's reads of spend: summary, daily rows, export and accounts."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from owr_shared import wall as walls
from owr_shared.dependencies import Pagination
from owr_shared.overload import CallerLimit, Slots, started_stream
from owr_shared.wall import Wall
from owr_usage.reports import cursors
from owr_usage.reports.errors import InvalidSort, KeyUsageNotFound
from owr_usage.reports.repository import SORTABLE, ReportRepository, RowFilter, Sort, stream_rows
from owr_usage.reports.schemas import (
    AccountKeyView,
    AccountPage,
    AccountSummary,
    BalanceView,
    DailyPage,
    DailyRow,
    DayFigures,
    DayModelFigures,
    DaySource,
    KeyFigures,
    ModelFigures,
    Totals,
    UsageSummary,
)

ExportFormat = Literal["csv", "json"]
EXPORT_COLUMNS = (
    "date",
    "key_id",
    "model",
    "provider",
    "cost",
    "byok_cost",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "provisional",
    "source",
)
# Rows fetched per round trip of the server-side cursor, and rows per chunk written to the client.
EXPORT_BATCH = 5000


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """How many of the expensive reads run at once in this process: per workspace, and exports in all."""

    summaries: CallerLimit
    exports: CallerLimit
    export_slots: Slots


def parse_sort(value: str | None) -> Sort:
    """`field` or `-field`; the default is `date` (oldest first)."""
    if not value:
        return Sort("date", descending=False)
    descending = value.startswith("-")
    field = value[1:] if descending else value
    if field not in SORTABLE:
        raise InvalidSort(", ".join(SORTABLE))
    return Sort(field, descending=descending)


async def check_key(session: AsyncSession, workspace_id: uuid.UUID, key_id: uuid.UUID | None) -> None:
    """A `key_id` filter must name a key usage knows in this workspace (another workspace's is a 404 too)."""
    if key_id is not None and not await ReportRepository(session).key_exists(workspace_id, key_id):
        raise KeyUsageNotFound()


def _count(value: Any, rows_with_breakdown: int) -> int | None:
    return int(value) if rows_with_breakdown else None


def _figures(row: Any) -> dict[str, Any]:
    broken = int(row.broken_rows)
    return {
        "cost": row.cost,
        "byok_cost": row.byok_cost,
        "requests": _count(row.requests, broken),
        "prompt_tokens": _count(row.prompt_tokens, broken),
        "completion_tokens": _count(row.completion_tokens, broken),
        "reasoning_tokens": _count(row.reasoning_tokens, broken),
        "provisional": bool(row.provisional),
    }


def _day_source(day: Any) -> DaySource:
    """`activity` when every daily row of the day has a breakdown, `snapshots` when none has, else `mixed`."""
    with_breakdown = int(day.broken_rows)
    if with_breakdown == int(day.rows):
        return "activity"
    return "snapshots" if with_breakdown == 0 else "mixed"


def _total(days: list[Any]) -> Totals:
    """The range's totals: the sum of its days (exact decimals; counts null when no row had a breakdown)."""
    broken = sum(int(d.broken_rows) for d in days)

    def count(name: str) -> int | None:
        return sum(int(getattr(d, name)) for d in days) if broken else None

    return Totals.model_construct(
        cost=sum((d.cost for d in days), Decimal(0)),
        byok_cost=sum((d.byok_cost for d in days), Decimal(0)),
        cost_without_breakdown=sum((d.cost_without_breakdown for d in days), Decimal(0)),
        requests=count("requests"),
        prompt_tokens=count("prompt_tokens"),
        completion_tokens=count("completion_tokens"),
        reasoning_tokens=count("reasoning_tokens"),
        provisional=any(d.provisional for d in days),
        rows=sum(int(d.rows) for d in days),
    )


async def summary(session: AsyncSession, *, workspace_id: uuid.UUID, first: date, last: date) -> UsageSummary:
    """Both rollup reads on the request's one connection, in one REPEATABLE READ READ ONLY transaction (so
    both see exactly the same data). Never a second connection: a summary that held one while waiting for
    another deadlocked the pool at 20 concurrent requests (issue 12). Built from trusted database figures,
    so the views are constructed without re-validation."""
    repo = ReportRepository(session)
    await repo.read_one_snapshot()
    model_rows = await repo.model_sets(workspace_id, first, last)
    key_rows = await repo.key_sums(workspace_id, first, last)
    days: list[Any] = []
    by_model: list[ModelFigures] = []
    by_day_model: list[DayModelFigures] = []
    for row in model_rows:
        if row.no_model:
            days.append(row)
        elif row.no_day:
            by_model.append(ModelFigures.model_construct(**_figures(row), model=row.model or None))
        else:
            by_day_model.append(
                DayModelFigures.model_construct(
                    date=row.day,
                    model=row.model or None,
                    cost=row.cost,
                    byok_cost=row.byok_cost,
                    provisional=bool(row.provisional),
                )
            )
    days.sort(key=lambda d: d.day)
    by_day = [
        DayFigures.model_construct(
            **_figures(d), cost_without_breakdown=d.cost_without_breakdown, date=d.day, source=_day_source(d)
        )
        for d in days
    ]
    by_key = [
        KeyFigures.model_construct(
            **_figures(row),
            key_id=row.key_id,
            label=row.label,
            linked=row.api_key_hash is not None,
            cost_without_breakdown=row.cost_without_breakdown,
        )
        for row in key_rows
    ]
    by_key.sort(key=lambda k: (-k.cost, str(k.key_id)))
    by_model.sort(key=lambda m: (-m.cost, m.model or ""))
    by_day_model.sort(key=lambda d: (d.date, -d.cost, d.model or ""))
    return UsageSummary.model_construct(
        first_day=first,
        last_day=last,
        totals=_total(days),
        by_key=by_key,
        by_model=by_model,
        by_day=by_day,
        by_day_model=by_day_model,
    )


def _daily_row(row: Any) -> DailyRow:
    return DailyRow.model_construct(**row._mapping)


async def daily(
    session: AsyncSession, *, rows: RowFilter, sort: Sort, paging: Pagination, cursor: str | None = None
) -> DailyPage:
    """A page by `page` (its offset) or by `cursor` (a keyset position: any page costs what the first does)."""
    start = cursors.start(cursor, rows, sort, paging)
    await check_key(session, rows.workspace_id, rows.key_id)
    repo = ReportRepository(session)
    await repo.plan_per_query()
    total = await repo.count(rows)
    if start.after is None:
        items = await repo.page_at(rows, sort, limit=paging.per_page, offset=start.rows_before, total=total)
    else:
        items = await repo.page(rows, sort, limit=paging.per_page, after=start.after)
    return DailyPage(
        items=[_daily_row(row) for row in items],
        total=total,
        page=start.page,
        per_page=paging.per_page,
        next_cursor=cursors.following(items, start, rows, sort, total),
    )


# --- export ----------------------------------------------------------------------------------------


def _csv_chunk(rows: Iterable[Sequence[Any]], header: bool) -> bytes:
    """Rows as PostgreSQL wrote their cells (defused, see `rows_statement`), quoted by the csv module."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(EXPORT_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _json_chunk(rows: Iterable[Sequence[Any]], first: bool) -> bytes:
    parts = [
        orjson.dumps(
            {
                "date": r[0],
                "key_id": r[1],
                "model": r[2],
                "provider": r[3],
                "cost": orjson.Fragment(r[4]),
                "byok_cost": orjson.Fragment(r[5]),
                "requests": r[6],
                "prompt_tokens": r[7],
                "completion_tokens": r[8],
                "reasoning_tokens": r[9],
                "provisional": r[10],
                "source": r[11],
            }
        )
        for r in rows
    ]
    if not parts:
        return b""
    return (b"\n" if first else b",\n") + b",\n".join(parts)


async def export(
    engine: AsyncEngine, wall: Wall, *, rows: RowFilter, sort: Sort, fmt: ExportFormat
) -> AsyncGenerator[bytes]:
    """The rows, streamed from a server-side cursor in one read-only snapshot: memory stays flat whatever
    the row count. CSV has a header row; JSON is one array of row objects (like /daily's items). The first
    chunk already holds the first batch, so the query has run before the response starts."""
    first = True
    async for batch in stream_rows(engine, wall, rows, sort, for_csv=fmt == "csv", batch=EXPORT_BATCH):
        if fmt == "csv":
            yield _csv_chunk(batch, first)
        else:
            yield (b"[" if first else b"") + _json_chunk(batch, first)
        first = False
    if fmt == "csv":
        if first:
            yield _csv_chunk((), header=True)
    else:
        yield b"[\n]\n" if first else b"\n]\n"


async def open_export(
    session: AsyncSession,
    engine: AsyncEngine,
    limits: ReportLimits,
    *,
    rows: RowFilter,
    sort: Sort,
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    """The export's stream, started: the workspace's share (a 429 when it is taken) and a slot of the
    export pool (a 503 when none frees up in time) are held until the stream ends, and the first batch is
    read before any header is sent, so a refusal or a timeout is still a problem response. `engine` is the
    export pool, sized to the slots: a slot's holder gets its connection at once, and exports never take
    the connections that every other request needs. Its connection goes behind the request's wall."""
    holds = AsyncExitStack()
    try:
        await holds.enter_async_context(limits.exports.hold(rows.workspace_id))
        await holds.enter_async_context(limits.export_slots.hold())
        await check_key(session, rows.workspace_id, rows.key_id)
    except BaseException:
        await holds.aclose()
        raise
    return await started_stream(export(engine, walls.of(session), rows=rows, sort=sort, fmt=fmt), holds)


# --- accounts --------------------------------------------------------------------------------------


async def accounts(session: AsyncSession, *, workspace_id: uuid.UUID, paging: Pagination) -> AccountPage:
    repo = ReportRepository(session)
    total = await repo.count_accounts(workspace_id)
    rows = (
        await repo.accounts(workspace_id, limit=paging.per_page, offset=paging.offset) if paging.offset < total else []
    )
    keys: dict[uuid.UUID, list[AccountKeyView]] = {}
    for key in await repo.account_keys(workspace_id, [row.management_key_id for row in rows]):
        keys.setdefault(key.management_key_id, []).append(
            AccountKeyView(
                hash=key.hash,
                name=key.name,
                label=key.label,
                disabled=key.disabled,
                limit=key.limit,
                limit_remaining=key.limit_remaining,
                limit_reset=key.limit_reset,
                expires_at=key.expires_at,
                usage=key.usage,
                byok_usage=key.byok_usage,
                share=key.share,
                key_id=key.key_id,
            )
        )
    items = []
    for row in rows:
        balance = None
        if row.balance_as_of is not None:
            balance = BalanceView(
                total_credits=row.total_credits if row.known else None,
                total_usage=row.total_usage if row.known else None,
                balance=row.total_credits - row.total_usage if row.known else None,
                known=row.known,
                as_of=row.balance_as_of,
            )
        items.append(
            AccountSummary(
                management_key_id=row.management_key_id,
                label=row.label,
                balance=balance,
                keys_as_of=row.keys_observed_at,
                keys=keys.get(row.management_key_id, []),
            )
        )
    return AccountPage(items=items, total=total, page=paging.page, per_page=paging.per_page)
