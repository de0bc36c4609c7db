"""SQL of budgets' figures: many budgets' period spend at once, from their scopes' sums (the events they call for:
`events_repository`). Callers own the transaction.

Spend comes from the exact daily figures (`daily_key_totals`, and `monthly_key_totals` for the month so far),
never from a loop over budgets: one statement computes each scope key's day, week and month once, sums them per
scope (a key, a workspace, an account's linked keys), and hands every budget of those scopes its period's figure.
The sums are MATERIALIZED and drive the budgets' scope index: with young, unanalysed tables the planner would
otherwise re-aggregate them per budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

FORECAST_SETTLE = 8  # a forecast event waits for an eighth of the period (a daily budget's first hour says little)


def factor_sql(start: str, reset: str) -> str:
    """SQL: period length ÷ time elapsed (spend times it is the period-end forecast), once the forecast may speak."""
    start_at, reset_at = f"({start})::timestamp AT TIME ZONE 'UTC'", f"({reset})::timestamp AT TIME ZONE 'UTC'"
    return (
        f"CASE WHEN c.now >= {start_at} + greatest(interval '1 hour', ({reset_at} - {start_at}) / {FORECAST_SETTLE}) "
        f"THEN extract(epoch FROM {reset_at} - {start_at}) / extract(epoch FROM c.now - {start_at}) END"
    )


def horizon_sql(start: str, reset: str) -> str:
    """SQL: the part of the period gone, at least an hour and an eighth of it: an amount times it is the spend
    from which the forecast passes that amount."""
    start_at, reset_at = f"({start})::timestamp AT TIME ZONE 'UTC'", f"({reset})::timestamp AT TIME ZONE 'UTC'"
    elapsed = f"greatest(c.now - {start_at}, interval '1 hour', ({reset_at} - {start_at}) / {FORECAST_SETTLE})"
    return f"extract(epoch FROM {elapsed}) / extract(epoch FROM {reset_at} - {start_at})"


# "Now" per workspace (OpenRouter's clock at ingestion), its UTC day, week and month, and each period's forecast
# factor: all computed once per workspace, not per budget.
CLOCK = f"""
clock AS MATERIALIZED (
    SELECT c.workspace_id, c.now, d.today, d.week_start, d.month_start,
           {factor_sql("d.today", "d.today + 1")} AS day_factor,
           {factor_sql("d.week_start", "d.week_start + 7")} AS week_factor,
           {factor_sql("d.month_start", "d.month_start + interval '1 month'")} AS month_factor,
           {horizon_sql("d.today", "d.today + 1")} AS day_horizon,
           {horizon_sql("d.week_start", "d.week_start + 7")} AS week_horizon,
           {horizon_sql("d.month_start", "d.month_start + interval '1 month'")} AS month_horizon
    FROM unnest(CAST(:workspace_ids AS uuid[]), CAST(:nows AS timestamptz[])) AS c(workspace_id, now)
    CROSS JOIN LATERAL (SELECT (c.now AT TIME ZONE 'UTC')::date AS today) t
    CROSS JOIN LATERAL (
        SELECT t.today, date_trunc('week', t.today)::date AS week_start, date_trunc('month', t.today)::date AS month_start
    ) d
)"""  # noqa: S608 - fixed SQL fragments only

# The scopes of the budgets named by id (a view's page, a budget just written); only those budgets are read.
BY_IDS = """
scopes AS (
    SELECT DISTINCT b.workspace_id, b.scope_type, b.scope_id
    FROM usage.budgets b JOIN clock c ON c.workspace_id = b.workspace_id
    WHERE b.id = ANY(CAST(:budget_ids AS uuid[]))
)"""
ONLY_IDS = "AND b.id = ANY(CAST(:budget_ids AS uuid[]))"

# The scopes the given keys' new figures may move: each key's own, its workspace (a workspace budget's scope id
# is the workspace's id), its account; and accounts named outright (a key list that unlinked a key).
BY_KEYS = """
touched AS (
    SELECT c.workspace_id, CAST('workspace' AS varchar) AS scope_type, c.workspace_id AS scope_id FROM clock c
    UNION
    SELECT ks.workspace_id, 'key', ks.key_id FROM usage.key_states ks
    JOIN clock c ON c.workspace_id = ks.workspace_id
    WHERE ks.key_id = ANY(CAST(:key_ids AS uuid[]))
    UNION
    SELECT kl.workspace_id, 'account', kl.management_key_id FROM usage.key_links kl
    JOIN clock c ON c.workspace_id = kl.workspace_id
    WHERE kl.key_id = ANY(CAST(:key_ids AS uuid[])) AND kl.management_key_id IS NOT NULL
    UNION
    SELECT a.workspace_id, 'account', a.management_key_id FROM usage.accounts a
    JOIN clock c ON c.workspace_id = a.workspace_id
    WHERE a.management_key_id = ANY(CAST(:account_ids AS uuid[]))
),
scopes AS MATERIALIZED (
    SELECT t.* FROM touched t
    CROSS JOIN LATERAL (
        SELECT 1 FROM usage.budgets b WHERE b.scope_id = t.scope_id AND b.workspace_id = t.workspace_id LIMIT 1
    ) watched
)"""

# The week's days up to today (the later ones NULL: an index scan skips a NULL key instead of probing for it).
_WEEK_DAYS = ["c.week_start"] + [
    f"CASE WHEN c.week_start + {n} <= c.today THEN c.week_start + {n} END" for n in range(1, 7)
]

# Each scope's keys (none: one NULL key), each key's figures read once (its month row, and its week's seven days
# by primary key: a week may start in the previous month; probes scale with the keys synced, not the workspace's
# size), and the sums per scope.
SUMS = f"""
members AS (
    SELECT sc.workspace_id, sc.scope_type, sc.scope_id, m.key_id
    FROM scopes sc
    LEFT JOIN LATERAL (
        SELECT sc.scope_id AS key_id WHERE sc.scope_type = 'key'
        UNION ALL
        SELECT ks.key_id FROM usage.key_states ks
        WHERE sc.scope_type = 'workspace' AND ks.workspace_id = sc.workspace_id
        UNION ALL
        SELECT kl.key_id FROM usage.key_links kl
        WHERE sc.scope_type = 'account' AND kl.management_key_id = sc.scope_id AND kl.workspace_id = sc.workspace_id
    ) m ON true
),
figures AS (
    SELECT k.workspace_id, k.key_id,
           COALESCE(mk.cost, 0) AS month_cost, COALESCE(mk.byok_cost, 0) AS month_byok,
           COALESCE(mk.provisional_rows, 0) > 0 AS month_provisional,
           d.week_cost, d.week_byok, d.week_provisional, d.day_cost, d.day_byok, d.day_provisional
    FROM (SELECT DISTINCT workspace_id, key_id FROM members WHERE key_id IS NOT NULL) k
    JOIN clock c ON c.workspace_id = k.workspace_id
    LEFT JOIN usage.monthly_key_totals mk
      ON mk.workspace_id = k.workspace_id AND mk.key_id = k.key_id AND mk.month = c.month_start
    CROSS JOIN LATERAL (
        SELECT COALESCE(sum(dk.cost), 0) AS week_cost, COALESCE(sum(dk.byok_cost), 0) AS week_byok,
               COALESCE(bool_or(dk.provisional), false) AS week_provisional,
               COALESCE(sum(dk.cost) FILTER (WHERE dk.day = c.today), 0) AS day_cost,
               COALESCE(sum(dk.byok_cost) FILTER (WHERE dk.day = c.today), 0) AS day_byok,
               COALESCE(bool_or(dk.provisional) FILTER (WHERE dk.day = c.today), false) AS day_provisional
        FROM usage.daily_key_totals dk
        WHERE dk.workspace_id = k.workspace_id AND dk.key_id = k.key_id
          AND dk.day = ANY(ARRAY[{", ".join(_WEEK_DAYS)}])
    ) d
),
sums AS MATERIALIZED (
    SELECT m.workspace_id, m.scope_type, m.scope_id,
           COALESCE(sum(f.day_cost), 0) AS day_cost, COALESCE(sum(f.day_byok), 0) AS day_byok,
           COALESCE(bool_or(f.day_provisional), false) AS day_provisional,
           COALESCE(sum(f.week_cost), 0) AS week_cost, COALESCE(sum(f.week_byok), 0) AS week_byok,
           COALESCE(bool_or(f.week_provisional), false) AS week_provisional,
           COALESCE(sum(f.month_cost), 0) AS month_cost, COALESCE(sum(f.month_byok), 0) AS month_byok,
           COALESCE(bool_or(f.month_provisional), false) AS month_provisional
    FROM members m LEFT JOIN figures f ON f.workspace_id = m.workspace_id AND f.key_id = m.key_id
    GROUP BY m.workspace_id, m.scope_type, m.scope_id
)"""  # noqa: S608 - fixed SQL fragments only

# A budget `b`'s spend in its period, whether it is provisional, and its period's forecast factor, picked from
# its scope's sums `s` and the clock `c` (plain expressions: the planner folds this into the scan).
PICK = """
CROSS JOIN LATERAL (
    SELECT CASE b.period
               WHEN 'daily' THEN s.day_cost + CASE WHEN b.include_byok THEN s.day_byok ELSE 0 END
               WHEN 'weekly' THEN s.week_cost + CASE WHEN b.include_byok THEN s.week_byok ELSE 0 END
               ELSE s.month_cost + CASE WHEN b.include_byok THEN s.month_byok ELSE 0 END END AS spend,
           CASE b.period WHEN 'daily' THEN s.day_provisional WHEN 'weekly' THEN s.week_provisional
                         ELSE s.month_provisional END AS provisional,
           CASE b.period WHEN 'daily' THEN c.day_factor WHEN 'weekly' THEN c.week_factor
                         ELSE c.month_factor END AS factor,
           CASE b.period WHEN 'daily' THEN c.today WHEN 'weekly' THEN c.week_start ELSE c.month_start END
               AS start_day
) v"""
# The budgets of the scopes `s` (the sums, or the due ones), by scope id: the scopes are MATERIALIZED and drive
# the budgets' index.
BUDGETS = f"""
FROM {{source}} s
JOIN clock c ON c.workspace_id = s.workspace_id
JOIN usage.budgets b
  ON b.scope_id = s.scope_id AND b.workspace_id = s.workspace_id AND b.scope_type = s.scope_type {{only}}
{PICK}"""

_SPEND_OF = text(
    f"""
WITH {CLOCK}, {BY_IDS}, {SUMS}
SELECT b.id, v.spend, v.provisional {BUDGETS.format(source="sums", only=ONLY_IDS)}
"""
)

# For the rest of the transaction: no JIT compilation (its start-up cost, tens of milliseconds, exceeds what it
# saves on statements this size). The statements' big steps are MATERIALIZED CTEs and their probes LATERAL ...
# LIMIT 1, so the plan cached after a few calls (blind to the arrays' sizes) stays a sound one: the generic plan
# of an earlier shape of this SQL re-aggregated per budget and took seconds.
NO_JIT = text("SELECT set_config('jit', 'off', true)")


def clock_params(clocks: dict[uuid.UUID, datetime]) -> dict[str, Any]:
    ordered = sorted(clocks)
    return {"workspace_ids": ordered, "nows": [clocks[w] for w in ordered]}


class BudgetFiguresRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def spend_of(
        self, workspace_id: uuid.UUID, budget_ids: Sequence[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, tuple[Any, bool]]:
        """{budget id: (spend in its period containing `now`, provisional)}."""
        if not budget_ids:
            return {}
        params = {**clock_params({workspace_id: now}), "budget_ids": list(budget_ids)}
        await self.session.execute(NO_JIT)
        rows = await self.session.execute(_SPEND_OF, params)
        return {row.id: (row.spend, row.provisional) for row in rows}
