"""SQL of effective prices: per (model, provider[, key]) the sums a price and its least-squares split need, for a
period and the one before it, in one pass over `daily_usage`; every query is scoped by the workspace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Numeric, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from owr_usage.accounts.models import ActivityDay
from owr_usage.reports.repository import RowFilter, row_clauses
from owr_usage.rollups.models import NO_BREAKDOWN, DailyModelTotal, DailyUsage

U = DailyUsage
PERIODS = ("cur", "prev")


@dataclass(frozen=True, slots=True)
class PriceFilter:
    """Days [first, last] and the period before them [previous_first, first); rows of `key_id`, `model` and
    `provider` only when given; per key when `by_key`."""

    workspace_id: uuid.UUID
    previous_first: date
    first: date
    last: date
    key_id: uuid.UUID | None = None
    model: str | None = None
    provider: str | None = None
    by_key: bool = False


def _sums(current: ColumnElement[bool], prefix: str) -> list[Any]:
    """The period's sums, exact: cost (BYOK's inference cost included) as y, tokens as NUMERIC so that their
    squares never overflow a bigint."""
    y = U.cost + U.byok_cost
    p = cast(U.prompt_tokens, Numeric)
    c = cast(U.completion_tokens, Numeric)

    def total(expr: Any, name: str) -> Any:
        return func.coalesce(func.sum(expr).filter(current), 0).label(f"{prefix}_{name}")

    return [
        func.count().filter(current).label(f"{prefix}_rows"),
        total(U.requests, "requests"),
        total(p, "prompt"),
        total(c, "completion"),
        total(y, "cost"),
        total(p * p, "pp"),
        total(p * c, "pc"),
        total(c * c, "cc"),
        total(p * y, "py"),
        total(c * y, "cy"),
        total(y * y, "yy"),
    ]


class PriceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sums(self, f: PriceFilter, *, limit: int | None = None, offset: int = 0) -> Sequence[Any]:
        """Groups with rows in [first, last], by the period's cost (highest first), each with both periods' sums
        and `total`, the number of such groups. Rows without a per-model breakdown name no model: left out."""
        current = U.day >= f.first
        groups = _groups(f)
        key = U.key_id if f.by_key else literal_column("CAST(NULL AS uuid)")
        cost = func.sum(U.cost + U.byok_cost).filter(current)
        stmt = (
            select(
                U.model,
                U.provider,
                key.label("key_id"),
                func.count().over().label("total"),
                *_sums(current, "cur"),
                *_sums(~current, "prev"),
            )
            .where(*_where(f))
            .group_by(*groups)
            .having(func.count().filter(current) > 0)
            .order_by(cost.desc(), *groups)
            .offset(offset)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.execute(stmt)).all()

    async def count(self, f: PriceFilter) -> int:
        """How many groups `sums` lists (for a page past the last one, which carries no `total`)."""
        groups = (
            select(*_groups(f))
            .where(*_where(f))
            .group_by(*_groups(f))
            .having(func.count().filter(U.day >= f.first) > 0)
            .subquery()
        )
        return int(await self.session.scalar(select(func.count()).select_from(groups)) or 0)

    async def workspaces_with_rows(self, first: date, last: date) -> list[uuid.UUID]:
        """Workspaces with breakdown rows in [first, last]."""
        m = DailyModelTotal  # a row per (workspace, day, model, provider): smaller than the keys' rows
        stmt = (
            select(m.workspace_id)
            .where(m.day >= first, m.day <= last, m.model != NO_BREAKDOWN)
            .distinct()
            .order_by(m.workspace_id)
        )
        return list((await self.session.scalars(stmt)).all())

    async def busy_among(
        self, workspace_ids: Sequence[uuid.UUID], first: date, last: date, since: datetime
    ) -> set[uuid.UUID]:
        """Those of `workspace_ids` with activity of [first, last] stored at or after `since` (an account sync
        still reporting its key hashes one by one), through the (workspace, date) index."""
        a = ActivityDay
        stmt = (
            select(a.workspace_id)
            .where(a.workspace_id.in_(workspace_ids), a.date >= first, a.date <= last, a.observed_at >= since)
            .distinct()
        )
        return set((await self.session.scalars(stmt)).all())

    async def weekly_sums(
        self, workspace_ids: Sequence[uuid.UUID], previous_first: date, first: date, last: date
    ) -> Sequence[Any]:
        """Per workspace, model and provider with rows in [first, last]: both periods' sums, in one pass."""
        current = U.day >= first
        stmt = (
            select(
                U.workspace_id,
                U.model,
                U.provider,
                literal_column("CAST(NULL AS uuid)").label("key_id"),
                *_sums(current, "cur"),
                *_sums(~current, "prev"),
            )
            .where(U.workspace_id.in_(workspace_ids), U.day >= previous_first, U.day <= last, U.model != NO_BREAKDOWN)
            .group_by(U.workspace_id, U.model, U.provider)
            .having(func.count().filter(current) > 0)
            .order_by(U.workspace_id, U.model, U.provider)
        )
        return (await self.session.execute(stmt)).all()


def _groups(f: PriceFilter) -> list[Any]:
    return [U.model, U.provider, U.key_id] if f.by_key else [U.model, U.provider]


def _where(f: PriceFilter) -> list[ColumnElement[bool]]:
    """The daily rows' filters over both periods (those of `/usage/daily`), breakdown rows only."""
    both = RowFilter(f.workspace_id, f.previous_first, f.last, key_id=f.key_id, model=f.model, provider=f.provider)
    return [*row_clauses(both), U.model != NO_BREAKDOWN]
