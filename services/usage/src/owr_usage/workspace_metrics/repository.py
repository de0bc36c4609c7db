"""The few reads behind a workspace's exposition: keys' latest states, spend by window, account balances."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.accounts.models import AccountBalance, AccountKey
from owr_usage.rollups.models import DailyKeyTotal, KeyLink
from owr_usage.snapshots.models import KeyState, Snapshot


@dataclass(frozen=True)
class KeyFigures:
    key_id: uuid.UUID
    observed_at: datetime
    label: str | None
    name: str | None
    is_management_key: bool
    limit: Decimal | None
    limit_remaining: Decimal | None
    limit_reset: str | None
    expires_at: datetime | None
    disabled: bool | None


@dataclass(frozen=True)
class WindowSpend:
    day: Decimal
    week: Decimal
    month: Decimal


@dataclass(frozen=True)
class Balance:
    observed_at: datetime
    total_credits: Decimal
    total_usage: Decimal


class WorkspaceMetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def keys(self, workspace_id: uuid.UUID) -> list[KeyFigures]:
        """Every key of the workspace with its latest snapshot, and its account row's name when linked."""
        rows = await self.session.execute(
            select(
                KeyState.key_id,
                KeyState.latest_observed_at,
                Snapshot.label,
                AccountKey.name,
                Snapshot.is_management_key,
                Snapshot.limit,
                Snapshot.limit_remaining,
                Snapshot.limit_reset,
                Snapshot.expires_at,
                AccountKey.disabled,
            )
            .join(
                Snapshot,
                and_(Snapshot.key_id == KeyState.key_id, Snapshot.observed_at == KeyState.latest_observed_at),
            )
            .outerjoin(KeyLink, and_(KeyLink.key_id == KeyState.key_id, KeyLink.workspace_id == workspace_id))
            .outerjoin(
                AccountKey,
                and_(
                    AccountKey.management_key_id == KeyLink.management_key_id,
                    AccountKey.hash == KeyLink.api_key_hash,
                    AccountKey.workspace_id == workspace_id,
                ),
            )
            .where(KeyState.workspace_id == workspace_id, Snapshot.workspace_id == workspace_id)
            .order_by(KeyState.key_id)
        )
        return [
            KeyFigures(key_id, observed_at, label, name, management, limit, remaining, reset, expires_at, disabled)
            for key_id, observed_at, label, name, management, limit, remaining, reset, expires_at, disabled in rows
        ]

    async def spend(
        self, workspace_id: uuid.UUID, *, today: date, week_start: date, month_start: date
    ) -> dict[uuid.UUID, WindowSpend]:
        """Each key's exact spend (the daily rollup) today, since `week_start` and since `month_start`."""

        def since(first: date) -> ColumnElement[Decimal]:
            return func.coalesce(func.sum(case((DailyKeyTotal.day >= first, DailyKeyTotal.cost))), 0)

        rows = await self.session.execute(
            select(DailyKeyTotal.key_id, since(today), since(week_start), since(month_start))
            .where(
                DailyKeyTotal.workspace_id == workspace_id,
                DailyKeyTotal.day >= min(week_start, month_start),
                DailyKeyTotal.day <= today,
            )
            .group_by(DailyKeyTotal.key_id)
        )
        return {key_id: WindowSpend(Decimal(d), Decimal(w), Decimal(m)) for key_id, d, w, m in rows.all()}

    async def balances(self, workspace_id: uuid.UUID, since: datetime) -> dict[uuid.UUID, tuple[Balance, Balance]]:
        """Per account (management key): its latest known balance, and the base of its burn: the latest
        known balance at or before `since`, or its oldest one when none is that old."""
        known = and_(AccountBalance.workspace_id == workspace_id, AccountBalance.known.is_(True))
        columns = (
            AccountBalance.management_key_id,
            AccountBalance.observed_at,
            AccountBalance.total_credits,
            AccountBalance.total_usage,
        )
        latest = await self.session.execute(
            select(*columns)
            .where(known)
            .ext(distinct_on(AccountBalance.management_key_id))
            .order_by(AccountBalance.management_key_id, AccountBalance.observed_at.desc())
        )
        old_enough = AccountBalance.observed_at <= since
        base = await self.session.execute(
            select(*columns)
            .where(known)
            .ext(distinct_on(AccountBalance.management_key_id))
            .order_by(
                AccountBalance.management_key_id,
                old_enough.desc(),
                case((old_enough, AccountBalance.observed_at)).desc().nulls_last(),
                AccountBalance.observed_at,
            )
        )
        bases = {row[0]: Balance(*row[1:]) for row in base.all()}
        return {row[0]: (Balance(*row[1:]), bases[row[0]]) for row in latest.all() if row[0] in bases}
