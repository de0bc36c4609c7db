"""SQL of budgets: their rows, and their periods' spend for many budgets at once; callers own the transaction.

Spend comes from the exact daily figures (`daily_key_totals`, and `monthly_key_totals` for the month so far),
never from a loop over budgets: one statement computes each scope key's day, week and month once, sums them
per scope (a key, a workspace, an account's linked keys), and hands every budget its period's figure.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import delete_workspace_rows, deleted_rows
from owr_usage.budgets.models import Budget
from owr_usage.channels.models import AlertChannel
from owr_usage.snapshots.models import KeyState

# "Now" per workspace (OpenRouter's clock at ingestion), and its UTC day.
_CLOCK = """
clock AS (
    SELECT c.workspace_id, c.now, (c.now AT TIME ZONE 'UTC')::date AS today
    FROM unnest(CAST(:workspace_ids AS uuid[]), CAST(:nows AS timestamptz[])) AS c(workspace_id, now)
)"""

# Budgets named by id (a view's page, a budget just written).
_BY_IDS = """
selected AS (
    SELECT b.* FROM usage.budgets b JOIN clock c ON c.workspace_id = b.workspace_id
    WHERE b.id = ANY(CAST(:budget_ids AS uuid[]))
)"""

# Budgets whose figure the given keys' new figures may move: their own, their workspace's, and their accounts'
# (the accounts they are linked to, and any account named outright: a key list that unlinked a key).
_BY_KEYS = """
accounts AS (
    SELECT kl.workspace_id, kl.management_key_id FROM usage.key_links kl
    WHERE kl.key_id = ANY(CAST(:key_ids AS uuid[])) AND kl.management_key_id IS NOT NULL
    UNION
    SELECT a.workspace_id, a.management_key_id FROM usage.accounts a
    WHERE a.management_key_id = ANY(CAST(:account_ids AS uuid[]))
),
selected AS (
    SELECT b.* FROM usage.budgets b JOIN clock c ON c.workspace_id = b.workspace_id
    WHERE b.scope_type = 'workspace'
       OR (b.scope_type = 'key' AND b.scope_id = ANY(CAST(:key_ids AS uuid[])))
       OR (b.scope_type = 'account' AND EXISTS (
               SELECT 1 FROM accounts a WHERE a.workspace_id = b.workspace_id AND a.management_key_id = b.scope_id))
)"""

_ZERO = "'00000000-0000-0000-0000-000000000000'::uuid"

# From `selected`: each budget's window, the keys of each distinct scope, each key's figures (read once), the
# scope sums, and each budget's spend in its period (`spent`). Weeks may start in the previous month, so the
# week comes from its days; the month from the key's month row; both by primary key.
_SPENT = f"""
windows AS (
    SELECT s.id, s.workspace_id, s.name, s.scope_type, s.scope_id, COALESCE(s.scope_id, {_ZERO}) AS scope_key,
           s.amount_usd, s.period, s.thresholds, s.include_byok, s.channel_ids, c.now,
           CASE s.period WHEN 'daily' THEN c.today
                         WHEN 'weekly' THEN date_trunc('week', c.today)::date
                         ELSE date_trunc('month', c.today)::date END AS start_day,
           CASE s.period WHEN 'daily' THEN c.today + 1
                         WHEN 'weekly' THEN date_trunc('week', c.today)::date + 7
                         ELSE (date_trunc('month', c.today) + interval '1 month')::date END AS reset_day
    FROM selected s JOIN clock c ON c.workspace_id = s.workspace_id
),
scopes AS (SELECT DISTINCT workspace_id, scope_type, scope_id, scope_key FROM windows),
members AS (
    SELECT sc.workspace_id, sc.scope_type, sc.scope_key, m.key_id
    FROM scopes sc
    CROSS JOIN LATERAL (
        SELECT sc.scope_id AS key_id WHERE sc.scope_type = 'key'
        UNION ALL
        SELECT ks.key_id FROM usage.key_states ks
        WHERE sc.scope_type = 'workspace' AND ks.workspace_id = sc.workspace_id
        UNION ALL
        SELECT kl.key_id FROM usage.key_links kl
        WHERE sc.scope_type = 'account' AND kl.management_key_id = sc.scope_id AND kl.workspace_id = sc.workspace_id
    ) m
),
figures AS (
    SELECT k.workspace_id, k.key_id,
           COALESCE(mk.cost, 0) AS month_cost, COALESCE(mk.byok_cost, 0) AS month_byok,
           COALESCE(mk.provisional_rows, 0) > 0 AS month_provisional,
           d.week_cost, d.week_byok, d.week_provisional, d.day_cost, d.day_byok, d.day_provisional
    FROM (SELECT DISTINCT workspace_id, key_id FROM members) k
    JOIN clock c ON c.workspace_id = k.workspace_id
    LEFT JOIN usage.monthly_key_totals mk
      ON mk.workspace_id = k.workspace_id AND mk.key_id = k.key_id AND mk.month = date_trunc('month', c.today)::date
    CROSS JOIN LATERAL (
        SELECT COALESCE(sum(dk.cost), 0) AS week_cost, COALESCE(sum(dk.byok_cost), 0) AS week_byok,
               COALESCE(bool_or(dk.provisional), false) AS week_provisional,
               COALESCE(sum(dk.cost) FILTER (WHERE dk.day = c.today), 0) AS day_cost,
               COALESCE(sum(dk.byok_cost) FILTER (WHERE dk.day = c.today), 0) AS day_byok,
               COALESCE(bool_or(dk.provisional) FILTER (WHERE dk.day = c.today), false) AS day_provisional
        FROM usage.daily_key_totals dk
        WHERE dk.workspace_id = k.workspace_id AND dk.key_id = k.key_id
          AND dk.day = ANY(ARRAY(
              SELECT generate_series(date_trunc('week', c.today), c.today, interval '1 day')::date))
    ) d
),
sums AS (
    SELECT m.workspace_id, m.scope_type, m.scope_key,
           sum(f.day_cost) AS day_cost, sum(f.day_byok) AS day_byok, bool_or(f.day_provisional) AS day_provisional,
           sum(f.week_cost) AS week_cost, sum(f.week_byok) AS week_byok,
           bool_or(f.week_provisional) AS week_provisional,
           sum(f.month_cost) AS month_cost, sum(f.month_byok) AS month_byok,
           bool_or(f.month_provisional) AS month_provisional
    FROM members m JOIN figures f ON f.workspace_id = m.workspace_id AND f.key_id = m.key_id
    GROUP BY m.workspace_id, m.scope_type, m.scope_key
),
spent AS (
    SELECT w.*,
           w.start_day::timestamp AT TIME ZONE 'UTC' AS period_start,
           w.reset_day::timestamp AT TIME ZONE 'UTC' AS resets_at,
           COALESCE(CASE w.period
               WHEN 'daily' THEN s.day_cost + CASE WHEN w.include_byok THEN s.day_byok ELSE 0 END
               WHEN 'weekly' THEN s.week_cost + CASE WHEN w.include_byok THEN s.week_byok ELSE 0 END
               ELSE s.month_cost + CASE WHEN w.include_byok THEN s.month_byok ELSE 0 END END, 0) AS spend,
           COALESCE(CASE w.period WHEN 'daily' THEN s.day_provisional WHEN 'weekly' THEN s.week_provisional
                                  ELSE s.month_provisional END, false) AS provisional
    FROM windows w
    LEFT JOIN sums s ON s.workspace_id = w.workspace_id AND s.scope_type = w.scope_type AND s.scope_key = w.scope_key
)"""  # noqa: S608 - fixed SQL fragments only

_SPEND_OF = text(
    f"""
WITH {_CLOCK}, {_BY_IDS}, {_SPENT}
SELECT id, spend, provisional FROM spent
"""  # noqa: S608 - fixed SQL fragments only
)

# The events a budget's figure calls for and that its workspace has not had yet (dedup keys as the outbox's):
# each threshold reached (the 100 % mark always counts; under 100 a crossing, from 100 on exceeded), the
# forecast passing the amount while the spend is under it, and a recovery after this period's exceeded event.
# `budget:{id}:{period start}:` — the budget's dedup keys in its current period.
_PERIOD_KEY = "'budget:' || e.id || ':' || to_char(e.start_day, 'YYYY-MM-DD') || ':'"
_CANDIDATES = f"""
candidates AS (
    SELECT e.*, t.threshold,
           CASE WHEN t.threshold < 100 THEN 'budget.threshold_crossed' ELSE 'budget.exceeded' END AS type,
           {_PERIOD_KEY} || t.threshold AS dedup_key
    FROM spent e
    CROSS JOIN LATERAL (SELECT DISTINCT x FROM unnest(e.thresholds || 100) AS x) AS t(threshold)
    WHERE e.spend * 100 >= t.threshold * e.amount_usd
    UNION ALL
    SELECT e.*, NULL, 'budget.forecast_exceeded', {_PERIOD_KEY} || 'forecast'
    FROM spent e
    WHERE e.spend > 0 AND e.spend < e.amount_usd AND e.now >= e.period_start + interval '1 hour'
      AND e.spend * extract(epoch FROM e.resets_at - e.period_start)
          >= e.amount_usd * extract(epoch FROM e.now - e.period_start)
    UNION ALL
    SELECT e.*, NULL, 'budget.recovered', {_PERIOD_KEY} || 'recovered'
    FROM spent e
    WHERE e.spend < e.amount_usd AND EXISTS (
        SELECT 1 FROM usage.alert_events ae
        WHERE ae.workspace_id = e.workspace_id AND ae.dedup_key = {_PERIOD_KEY} || '100')
)"""  # noqa: S608 - fixed SQL fragments only

_NEW_EVENTS = """
SELECT c.id, c.workspace_id, c.name, c.scope_type, c.scope_id, c.amount_usd, c.period, c.thresholds,
       c.channel_ids, c.now, c.period_start, c.resets_at, c.spend, c.provisional, c.threshold, c.type, c.dedup_key
FROM candidates c
WHERE NOT EXISTS (
    SELECT 1 FROM usage.alert_events ae WHERE ae.workspace_id = c.workspace_id AND ae.dedup_key = c.dedup_key)
ORDER BY c.workspace_id, c.id, c.threshold NULLS LAST, c.type
"""

_EVENTS_BY_IDS = text(f"WITH {_CLOCK}, {_BY_IDS}, {_SPENT}, {_CANDIDATES} {_NEW_EVENTS}")
_EVENTS_BY_KEYS = text(f"WITH {_CLOCK}, {_BY_KEYS}, {_SPENT}, {_CANDIDATES} {_NEW_EVENTS}")


def _clock(clocks: dict[uuid.UUID, datetime]) -> dict[str, Any]:
    ordered = sorted(clocks)
    return {"workspace_ids": ordered, "nows": [clocks[w] for w in ordered]}


class BudgetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- rows (workspace-scoped) -------------------------------------------------------------------

    async def add(self, budget: Budget) -> Budget:
        self.session.add(budget)
        await self.session.flush()
        return budget

    async def get(self, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
        return (
            await self.session.scalars(
                select(Budget).where(Budget.id == budget_id, Budget.workspace_id == workspace_id)
            )
        ).one_or_none()

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[Sequence[Budget], int]:
        """Newest first."""
        rows = await self.session.scalars(
            select(Budget)
            .where(Budget.workspace_id == workspace_id)
            .order_by(Budget.created_at.desc(), Budget.id.desc())
            .offset(offset)
            .limit(limit)
        )
        total = await self.session.scalar(select(func.count()).where(Budget.workspace_id == workspace_id))
        return rows.all(), int(total or 0)

    async def remove(self, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
        statement = delete(Budget).where(Budget.id == budget_id, Budget.workspace_id == workspace_id)
        return await deleted_rows(self.session, statement) > 0

    async def known_channels(self, workspace_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `channel_ids` that are channels of the workspace."""
        if not channel_ids:
            return set()
        rows = await self.session.scalars(
            select(AlertChannel.id).where(
                AlertChannel.workspace_id == workspace_id, AlertChannel.id.in_(list(channel_ids))
            )
        )
        return set(rows.all())

    async def latest_observation(self, workspace_id: uuid.UUID) -> datetime | None:
        """OpenRouter's clock as last seen for the workspace: its keys' latest snapshot time."""
        return await self.session.scalar(
            select(func.max(KeyState.latest_observed_at)).where(KeyState.workspace_id == workspace_id)
        )

    # --- figures -----------------------------------------------------------------------------------

    async def spend_of(
        self, workspace_id: uuid.UUID, budget_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, tuple[Any, bool]]:
        """{budget id: (spend in its period containing `now`, provisional)}."""
        if not budget_ids:
            return {}
        params = {**_clock({workspace_id: now}), "budget_ids": list(budget_ids)}
        rows = await self.session.execute(_SPEND_OF, params)
        return {row.id: (row.spend, row.provisional) for row in rows}

    async def due_events_of_budgets(
        self, workspace_id: uuid.UUID, budget_ids: Sequence[uuid.UUID], now: datetime
    ) -> Sequence[Row[Any]]:
        """The events these budgets call for now that were not raised yet (see `_CANDIDATES`)."""
        params = {**_clock({workspace_id: now}), "budget_ids": list(budget_ids)}
        return (await self.session.execute(_EVENTS_BY_IDS, params)).all()

    async def due_events_of_keys(
        self,
        clocks: dict[uuid.UUID, datetime],
        key_ids: Sequence[uuid.UUID],
        account_ids: Sequence[uuid.UUID] = (),
    ) -> Sequence[Row[Any]]:
        """The same for every budget these keys' figures (or these accounts') may move, each workspace at its
        own clock."""
        if not clocks:
            return []
        params = {**_clock(clocks), "key_ids": sorted(set(key_ids)), "account_ids": sorted(set(account_ids))}
        return (await self.session.execute(_EVENTS_BY_KEYS, params)).all()

    # --- erasure (internal API) --------------------------------------------------------------------

    async def delete_workspace(self, workspace_id: uuid.UUID) -> dict[str, int]:
        return await delete_workspace_rows(self.session, workspace_id, (Budget,))
