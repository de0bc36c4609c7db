"""Budgets: their rows, their views, and their evaluation into events.

A budget's "now" is OpenRouter's clock: at ingestion the snapshots' `observed_at`, in a view the workspace's
latest observation (so a period never turns over before OpenRouter's own windows do). Evaluation is set-based
(`BudgetRepository.due_events_*`): one statement finds, for every budget a change may move, the events its
figure calls for that its workspace has not had, and one statement writes them (`alerts.raise_events`). The
dedup keys `budget:{id}:{period_start}:{threshold|forecast|recovered}` make each event once per period, and the
next period's start re-arms them by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger
from owr_shared.wire.alerts import EventType
from owr_usage.alerts import service as alerts
from owr_usage.alerts.service import money
from owr_usage.budgets.errors import BudgetNotFound, KillSwitchNeedsKeyScope, UnknownChannels
from owr_usage.budgets.events_repository import BudgetEventsRepository
from owr_usage.budgets.figures_repository import FORECAST_SETTLE, BudgetFiguresRepository
from owr_usage.budgets.models import Budget
from owr_usage.budgets.periods import MIN_ELAPSED, Period, outlook, window
from owr_usage.budgets.repository import BudgetRepository
from owr_usage.budgets.schemas import (
    BudgetPage,
    BudgetView,
    CreateBudgetRequest,
    ScopeType,
    ScopeView,
    UpdateBudgetRequest,
)
from owr_usage.key_actions import service as key_actions

log = get_logger(__name__)


# --- rows and views --------------------------------------------------------------------------------------


async def create(
    session: AsyncSession, *, workspace_id: uuid.UUID, body: CreateBudgetRequest, now: datetime
) -> BudgetView:
    """Store the budget, raise what its current figure already calls for, and answer its view."""
    repo = BudgetRepository(session)
    await _check_channels(repo, workspace_id, body.channel_ids)
    budget = await repo.add(
        Budget(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            name=body.name,
            scope_type=body.scope.type,
            scope_id=workspace_id if body.scope.type == "workspace" else body.scope.id,
            amount_usd=body.amount_usd,
            period=body.period,
            thresholds=list(body.thresholds),
            include_byok=body.include_byok,
            channel_ids=list(body.channel_ids),
            disable_key_on_exceed=body.disable_key_on_exceed,
        )
    )
    return await _evaluated_view(session, repo, budget, now)


async def update(
    session: AsyncSession, *, workspace_id: uuid.UUID, budget_id: uuid.UUID, body: UpdateBudgetRequest, now: datetime
) -> BudgetView:
    """Change what is given (a raised amount may recover an exceeded budget: that is raised here too)."""
    repo = BudgetRepository(session)
    budget = await _get(repo, workspace_id, budget_id)
    changes = body.model_dump(exclude_none=True)
    if "channel_ids" in changes:
        await _check_channels(repo, workspace_id, body.channel_ids or [])
    if changes.get("disable_key_on_exceed") and budget.scope_type != "key":
        raise KillSwitchNeedsKeyScope()
    for name, value in changes.items():
        setattr(budget, name, value)
    budget.updated_at = datetime.now(UTC)
    await session.flush()
    view = await _evaluated_view(session, repo, budget, now)
    if changes.get("disable_key_on_exceed") and view.state == "exceeded":
        # Armed on a budget exceeded already: its exceeded event is this period's past, so act now.
        await _kill_switches(session, [budget.id], {(workspace_id, budget.id): view.period_start})
    return view


async def get(session: AsyncSession, *, workspace_id: uuid.UUID, budget_id: uuid.UUID, now: datetime) -> BudgetView:
    repo = BudgetRepository(session)
    budget = await _get(repo, workspace_id, budget_id)
    return (await _views(repo, workspace_id, [budget], await clock(repo, workspace_id, now)))[0]


async def page(session: AsyncSession, *, workspace_id: uuid.UUID, paging: Pagination, now: datetime) -> BudgetPage:
    """Newest first; every budget's figure from one statement."""
    repo = BudgetRepository(session)
    rows, total = await repo.page(workspace_id, offset=paging.offset, limit=paging.per_page)
    items = await _views(repo, workspace_id, rows, await clock(repo, workspace_id, now))
    return BudgetPage(items=items, total=total, page=paging.page, per_page=paging.per_page)


async def delete(session: AsyncSession, *, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> None:
    """Its events stay in the alert history."""
    repo = BudgetRepository(session)
    budget = await _get(repo, workspace_id, budget_id)
    await repo.remove(workspace_id, budget_id)
    outbox = BudgetEventsRepository(session)
    await outbox.clear_exceeded([(workspace_id, budget_id)])
    await outbox.forget_watch(workspace_id, budget.scope_type, _scope_id(budget))


async def clock(repo: BudgetRepository, workspace_id: uuid.UUID, now: datetime) -> datetime:
    """The moment a view is computed at: OpenRouter's clock as last seen for the workspace (`now` before any)."""
    return await repo.latest_observation(workspace_id) or now


def _scope_id(budget: Budget) -> uuid.UUID:
    return budget.scope_id or budget.workspace_id


async def _get(repo: BudgetRepository, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> Budget:
    budget = await repo.get(workspace_id, budget_id)
    if budget is None:
        raise BudgetNotFound()
    return budget


async def _check_channels(repo: BudgetRepository, workspace_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]) -> None:
    if set(channel_ids) - await repo.known_channels(workspace_id, channel_ids):
        raise UnknownChannels()


async def _evaluated_view(session: AsyncSession, repo: BudgetRepository, budget: Budget, now: datetime) -> BudgetView:
    """The budget was created or changed: it is evaluated in full now, and its scope's next ingestion looks at
    every budget of the scope again."""
    at = await clock(repo, budget.workspace_id, now)
    outbox = BudgetEventsRepository(session)
    await outbox.forget_watch(budget.workspace_id, budget.scope_type, _scope_id(budget))
    due = await outbox.due_events_of_budgets(budget.workspace_id, [budget.id], at)
    await _raise(session, due)
    return (await _views(repo, budget.workspace_id, [budget], at))[0]


async def _views(
    repo: BudgetRepository, workspace_id: uuid.UUID, budgets: Sequence[Budget], at: datetime
) -> list[BudgetView]:
    spend = await BudgetFiguresRepository(repo.session).spend_of(workspace_id, [b.id for b in budgets], at)
    return [_view(b, *spend.get(b.id, (Decimal(0), False)), at) for b in budgets]


def _view(budget: Budget, spent: Decimal, provisional: bool, at: datetime) -> BudgetView:
    period = cast(Period, budget.period)
    start, reset = window(period, at)
    seen = outlook(spent, budget.amount_usd, budget.thresholds, period, at)
    return BudgetView(
        id=budget.id,
        name=budget.name,
        scope=ScopeView(
            type=cast(ScopeType, budget.scope_type), id=None if budget.scope_type == "workspace" else budget.scope_id
        ),
        amount_usd=budget.amount_usd,
        period=period,
        thresholds=budget.thresholds,
        include_byok=budget.include_byok,
        channel_ids=budget.channel_ids,
        disable_key_on_exceed=budget.disable_key_on_exceed,
        created_at=budget.created_at,
        updated_at=budget.updated_at,
        period_start=start,
        resets_at=reset,
        spend_usd=spent,
        provisional=provisional,
        percent_used=seen.percent_used,
        forecast_usd=seen.forecast_usd,
        projected_cross_at=seen.projected_cross_at,
        state=seen.state,
    )


# --- evaluation ------------------------------------------------------------------------------------------


async def evaluate_keys(
    session: AsyncSession,
    clocks: Mapping[uuid.UUID, datetime],
    key_ids: Iterable[uuid.UUID],
    account_ids: Iterable[uuid.UUID] = (),
) -> int:
    """New figures arrived for `key_ids` (each workspace at its clock in `clocks`): raise what every budget they
    touch (the key's, its workspace's, its account's; `account_ids`' too) now calls for. How many events."""
    keys, accounts = list(key_ids), list(account_ids)
    if not clocks or not (keys or accounts):
        return 0
    due = await BudgetEventsRepository(session).due_events_of_keys(dict(clocks), keys, accounts)
    return await _raise(session, due)


async def _raise(session: AsyncSession, due: Sequence[Row[Any]]) -> int:
    """Raise the events found; a budget newly exceeded gets its condition (the recovery's look-out), a recovered
    one loses it."""
    written = await alerts.write_events(session, events_of(due))
    starts = {(row.workspace_id, row.id): row.period_start for row in due}
    outbox = BudgetEventsRepository(session)
    exceeded = [e for e in written if e.type == "budget.exceeded" and e.data["threshold"] == 100]
    await outbox.mark_exceeded([(e.workspace_id, b, starts[(e.workspace_id, b)]) for e, b in _budgets(exceeded)])
    await _kill_switches(session, [b for _, b in _budgets(exceeded)], starts)
    recovered = [e for e in written if e.type == "budget.recovered"]
    await outbox.clear_exceeded([(e.workspace_id, b) for e, b in _budgets(recovered)])
    return len(written)


async def _kill_switches(
    session: AsyncSession, budget_ids: Sequence[uuid.UUID], starts: Mapping[tuple[uuid.UUID, uuid.UUID], datetime]
) -> None:
    """Budgets just exceeded whose kill switch is on: their key's disable, once per budget period."""
    for budget in await BudgetRepository(session).with_kill_switch(budget_ids):
        start = starts[(budget.workspace_id, budget.id)]
        if budget.scope_id is None:
            continue
        await key_actions.request_disable(
            session,
            workspace_id=budget.workspace_id,
            key_id=budget.scope_id,
            reason=f"budget {budget.name!r} exceeded",
            source="budget",
            dedup_key=f"budget:{budget.id}:{start.isoformat()}",
            budget_id=budget.id,
            evidence={"budget_id": str(budget.id), "period_start": start.isoformat()},
        )


def _budgets(events: Sequence[alerts.NewEvent]) -> list[tuple[alerts.NewEvent, uuid.UUID]]:
    return [(event, uuid.UUID(event.data["budget_id"])) for event in events]


def _forecast_passes(row: Row[Any], forecast: Decimal | None) -> bool:
    settled = max(MIN_ELAPSED, (row.resets_at - row.period_start) / FORECAST_SETTLE)
    return forecast is not None and forecast >= row.amount_usd and row.now - row.period_start >= settled


def events_of(rows: Sequence[Row[Any]]) -> list[alerts.NewEvent]:
    """The outbox's events for the rows the evaluation found (a forecast is confirmed by `outlook`)."""
    events = []
    for row in rows:
        period = cast(Period, row.period)
        seen = outlook(row.spend, row.amount_usd, row.thresholds, period, row.now)
        if row.type == "budget.forecast_exceeded" and not _forecast_passes(row, seen.forecast_usd):
            continue
        data = {
            "budget_id": str(row.id),
            "name": row.name,
            "scope": {"type": row.scope_type, "id": None if row.scope_type == "workspace" else str(row.scope_id)},
            "period": {"kind": period, "start": row.period_start.isoformat(), "resets_at": row.resets_at.isoformat()},
            "spend_usd": money(row.spend),
            "amount_usd": money(row.amount_usd),
            "percent_used": money(seen.percent_used),
            "threshold": row.threshold,
            "forecast_usd": None if seen.forecast_usd is None else money(seen.forecast_usd),
            "projected_cross_at": None if seen.projected_cross_at is None else seen.projected_cross_at.isoformat(),
            "provisional": row.provisional,
        }
        events.append(
            alerts.NewEvent(
                workspace_id=row.workspace_id,
                type=cast(EventType, row.type),
                data=data,
                occurred_at=row.now,
                dedup_key=row.dedup_key,
                channel_ids=tuple(row.channel_ids or ()),
            )
        )
    return events
