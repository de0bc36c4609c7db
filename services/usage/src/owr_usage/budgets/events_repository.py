"""SQL of budgets' events: what many budgets' figures call for and their workspaces have not had, the scopes'
watch marks, and the exceeded budgets' conditions (a recovery is looked for among those only). Callers own the
transaction; the figures' fragments come from `figures_repository`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.alerts.models import AlertCondition
from owr_usage.budgets.figures_repository import (
    BUDGETS,
    BY_IDS,
    BY_KEYS,
    CLOCK,
    NO_JIT,
    ONLY_IDS,
    PICK,
    SUMS,
    clock_params,
)

EXCEEDED = "budget.exceeded"  # the condition rule of a budget exceeded in its current period

# At ingestion a scope is looked at only when its figure passed one of its watch marks (`WATCH`, one condition
# row per scope, written by the last look), in each period and with and without BYOK: `low`, the least next mark
# of its budgets (in USD); `forecast`, the least amount of a budget whose forecast has not passed it (the spend
# passes its forecast mark when it reaches that amount times the part of the period gone, `horizon`, so the
# mark moves with the clock); `high`, the greatest amount of a budget exceeded now (under it, one may recover).
# A scope with no such row, or whose row is of an earlier period, is looked at too. Budgets changed through the
# API drop their scope's row.
WATCH = "budget.watch"
_PERIODS = (("daily", "day", "today"), ("weekly", "week", "week_start"), ("monthly", "month", "month_start"))


def _passed(period: str, prefix: str, start: str) -> str:
    mark, horizon = f"w.data -> '{period}'", f"c.{prefix}_horizon"
    cost, with_byok = f"k.{prefix}_cost", f"k.{prefix}_cost + k.{prefix}_byok"
    return (
        f"({mark} ->> 'start') IS DISTINCT FROM to_char(c.{start}, 'YYYY-MM-DD')"
        f" OR {cost} >= ({mark} ->> 'low')::numeric OR {with_byok} >= ({mark} ->> 'low_byok')::numeric"
        f" OR {cost} >= ({mark} ->> 'forecast')::numeric * {horizon}"
        f" OR {with_byok} >= ({mark} ->> 'forecast_byok')::numeric * {horizon}"
        f" OR {cost} < ({mark} ->> 'high')::numeric OR {with_byok} < ({mark} ->> 'high_byok')::numeric"
    )


def _marks(period: str, start: str) -> str:
    def of(kind: str, byok: bool) -> str:
        agg = f"max(n.{kind})" if kind == "high" else f"min(n.{kind})"
        return f"{agg} FILTER (WHERE n.period = '{period}' AND {'' if byok else 'NOT '}n.include_byok)"

    marks = ", ".join(
        f"'{kind}{suffix}', {of(kind, byok)}"
        for kind in ("low", "forecast", "high")
        for suffix, byok in (("", False), ("_byok", True))
    )
    return f"'{period}', jsonb_build_object('start', to_char(c.{start}, 'YYYY-MM-DD'), {marks})"


_DUE = f"""
keyed AS MATERIALIZED (SELECT s.*, s.scope_type || ':' || s.scope_id AS watch_key FROM sums s),
due AS MATERIALIZED (
    SELECT k.* FROM keyed k
    JOIN clock c ON c.workspace_id = k.workspace_id
    LEFT JOIN usage.alert_conditions w
      ON w.workspace_id = k.workspace_id AND w.rule = '{WATCH}' AND w.subject = k.watch_key
    WHERE w.subject IS NULL OR {" OR ".join(_passed(*period) for period in _PERIODS)}
)"""  # noqa: S608 - fixed SQL fragments only
_WATCH = f"""
next_marks AS (
    SELECT e.workspace_id, e.scope_type, e.scope_id, e.period, e.include_byok,
           (SELECT min(x) FROM unnest(e.thresholds || 100) AS x WHERE e.spend * 100 < x * e.amount_usd)
               * e.amount_usd / 100 AS low,
           CASE WHEN e.spend < e.amount_usd AND NOT COALESCE(e.spend * e.factor >= e.amount_usd, false)
                THEN e.amount_usd END AS forecast,
           CASE WHEN e.spend >= e.amount_usd THEN e.amount_usd END AS high
    FROM scanned e
),
watch AS (
    INSERT INTO usage.alert_conditions AS w (workspace_id, rule, subject, since, data)
    SELECT k.workspace_id, '{WATCH}', k.watch_key, c.now,
           jsonb_build_object({", ".join(_marks(period, start) for period, _, start in _PERIODS)})
    FROM due k
    JOIN clock c ON c.workspace_id = k.workspace_id
    LEFT JOIN next_marks n ON n.workspace_id = k.workspace_id AND n.scope_type = k.scope_type AND n.scope_id = k.scope_id
    GROUP BY k.workspace_id, k.watch_key, c.now, c.today, c.week_start, c.month_start
    ON CONFLICT (workspace_id, rule, subject) DO UPDATE SET since = EXCLUDED.since, data = EXCLUDED.data
)"""  # noqa: S608 - fixed SQL fragments only

# The events a budget's figure calls for that its workspace has not had yet (dedup keys as the outbox's):
# - each mark reached: its thresholds and the 100 % mark (under 100 a crossing, from 100 on exceeded). Marks are
#   raised together, and a budget's change re-evaluates it in full, so at ingestion the highest mark reached
#   stands for the others: when it was raised, so were they, and only a budget whose highest mark is new has its
#   marks looked at one by one (`{top}`);
# - the forecast passing the amount while the spend is under it, once the period is settled (`_factor`);
# - a recovery: under the amount again after this period's exceeded event, looked for among the budgets with an
#   `EXCEEDED` condition of this period only.
# The scopes' budgets (`scanned`) are narrowed to those at or past a mark or forecast past their amount
# (`hits`). Dedup keys are computed in MATERIALIZED CTEs and probed as plain values: row-level security keeps a
# comparison with a computed (not leakproof) expression from being an index condition.
_PERIOD_KEY = "'budget:' || e.id || ':' || to_char(e.start_day, 'YYYY-MM-DD') || ':'"
_COLUMNS = (
    "e.id, e.workspace_id, e.amount_usd, e.period, e.thresholds, e.now, e.start_day, e.period_start, e.resets_at, "
    "e.spend, e.provisional"
)
_AT = """
       e.start_day::timestamp AT TIME ZONE 'UTC' AS period_start,
       (CASE e.period WHEN 'daily' THEN e.start_day + 1 WHEN 'weekly' THEN e.start_day + 7
                      ELSE (e.start_day + interval '1 month')::date END)::timestamp AT TIME ZONE 'UTC' AS resets_at"""
_HITS = f"""
scanned AS MATERIALIZED (
    SELECT b.id, b.workspace_id, b.scope_type, b.scope_id, b.include_byok, b.amount_usd, b.period, b.thresholds,
           c.now, v.start_day, v.spend, v.provisional, v.factor
    {BUDGETS}
),
hits AS MATERIALIZED (
    SELECT * FROM scanned e
    WHERE e.spend * 100 >= least(e.thresholds[1], 100) * e.amount_usd
       OR (e.spend > 0 AND e.spend < e.amount_usd AND e.spend * e.factor >= e.amount_usd)
),
marked AS MATERIALIZED (
    SELECT e.*, {_AT},
           {_PERIOD_KEY} || (
               SELECT max(x) FROM unnest(e.thresholds || 100) AS x WHERE e.spend * 100 >= x * e.amount_usd
           ) AS top_key
    FROM hits e
    WHERE e.spend * 100 >= least(e.thresholds[1], 100) * e.amount_usd
),
exceeded_ids AS MATERIALIZED (
    SELECT ac.workspace_id, CAST(ac.subject AS uuid) AS budget_id, ac.since
    FROM clock c JOIN usage.alert_conditions ac ON ac.workspace_id = c.workspace_id AND ac.rule = '{EXCEEDED}'
),
exceeded_budgets AS MATERIALIZED (
    SELECT b.*, x.since FROM exceeded_ids x
    JOIN usage.budgets b ON b.id = x.budget_id AND b.workspace_id = x.workspace_id {{only}}
),
exceeded AS MATERIALIZED (
    SELECT e.*, {_AT}
    FROM (
        SELECT b.id, b.workspace_id, b.amount_usd, b.period, b.thresholds, c.now, v.start_day, v.spend,
               v.provisional, b.since
        FROM exceeded_budgets b
        JOIN clock c ON c.workspace_id = b.workspace_id
        JOIN {{source}} s
          ON s.workspace_id = b.workspace_id AND s.scope_type = b.scope_type AND s.scope_id = b.scope_id
        {PICK}
    ) e
)"""  # noqa: S608 - fixed SQL fragments only
_TOP_RAISED = """
LEFT JOIN LATERAL (
    SELECT 1 AS raised FROM usage.alert_events ae
    WHERE ae.workspace_id = e.workspace_id AND ae.dedup_key = e.top_key
    LIMIT 1
) r ON true"""
_CANDIDATES = f"""
candidates AS MATERIALIZED (
    SELECT {_COLUMNS}, t.threshold,
           CASE WHEN t.threshold < 100 THEN 'budget.threshold_crossed' ELSE 'budget.exceeded' END AS type,
           {_PERIOD_KEY} || t.threshold AS dedup_key
    FROM marked e
    {{top}}
    CROSS JOIN LATERAL (
        SELECT x FROM unnest(e.thresholds) AS x WHERE x <> 100
        UNION ALL
        SELECT 100
    ) AS t(threshold)
    WHERE e.spend * 100 >= t.threshold * e.amount_usd {{top_where}}
    UNION ALL
    SELECT {_COLUMNS}, NULL, 'budget.forecast_exceeded', {_PERIOD_KEY} || 'forecast'
    FROM (SELECT h.*, {_AT.replace("e.", "h.")} FROM hits h) e
    WHERE e.spend > 0 AND e.spend < e.amount_usd AND e.spend * e.factor >= e.amount_usd
    UNION ALL
    SELECT {_COLUMNS}, NULL, 'budget.recovered', {_PERIOD_KEY} || 'recovered'
    FROM exceeded e
    WHERE e.spend < e.amount_usd AND e.since = e.period_start
)"""  # noqa: S608 - fixed SQL fragments only

_NEW_EVENTS = """
SELECT c.id, c.workspace_id, b.name, b.scope_type, b.scope_id, c.amount_usd, c.period, c.thresholds,
       b.channel_ids, c.now, c.period_start, c.resets_at, c.spend, c.provisional, c.threshold, c.type, c.dedup_key
FROM candidates c
LEFT JOIN LATERAL (
    SELECT 1 AS raised FROM usage.alert_events ae
    WHERE ae.workspace_id = c.workspace_id AND ae.dedup_key = c.dedup_key
    LIMIT 1
) r ON true
JOIN usage.budgets b ON b.id = c.id
WHERE r.raised IS NULL
ORDER BY c.workspace_id, c.id, c.threshold NULLS LAST, c.type
"""

# Budgets named by id: each looked at in full (a change through the API). Ingestion: the due scopes' budgets,
# each budget's highest mark standing for the others, and the scopes' watch marks written again.
_EVENTS_BY_IDS = text(
    f"""WITH {CLOCK}, {BY_IDS}, {SUMS}, {_HITS.format(source="sums", only=ONLY_IDS)},
{_CANDIDATES.format(top="", top_where="")} {_NEW_EVENTS}"""
)
_EVENTS_BY_KEYS = text(
    f"""WITH {CLOCK}, {BY_KEYS}, {SUMS}, {_DUE}, {_HITS.format(source="due", only="")}, {_WATCH},
{_CANDIDATES.format(top=_TOP_RAISED, top_where="AND r.raised IS NULL")} {_NEW_EVENTS}"""
)


# Most syncs are of workspaces without budgets: they skip the evaluation after one index probe each.
_ANY_BUDGET = text(
    "SELECT EXISTS (SELECT 1 FROM usage.budgets WHERE workspace_id = ANY(CAST(:workspace_ids AS uuid[]))) "
    "AND set_config('jit', 'off', true) = 'off'"
)


class BudgetEventsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due_events_of_budgets(
        self, workspace_id: uuid.UUID, budget_ids: Sequence[uuid.UUID], now: datetime
    ) -> Sequence[Row[Any]]:
        """The events these budgets call for now that were not raised yet, every mark looked at."""
        params = {**clock_params({workspace_id: now}), "budget_ids": list(budget_ids)}
        await self.session.execute(NO_JIT)
        return (await self.session.execute(_EVENTS_BY_IDS, params)).all()

    async def due_events_of_keys(
        self,
        clocks: dict[uuid.UUID, datetime],
        key_ids: Sequence[uuid.UUID],
        account_ids: Sequence[uuid.UUID] = (),
    ) -> Sequence[Row[Any]]:
        """The same for every budget these keys' figures (or these accounts') may move, each workspace at its
        own clock."""
        # One round trip: whether any of the workspaces has a budget, and (if so) JIT off.
        if not clocks or not await self.session.scalar(_ANY_BUDGET, {"workspace_ids": sorted(clocks)}):
            return []
        params = {**clock_params(clocks), "key_ids": sorted(set(key_ids)), "account_ids": sorted(set(account_ids))}
        return (await self.session.execute(_EVENTS_BY_KEYS, params)).all()

    async def mark_exceeded(self, budgets: Sequence[tuple[uuid.UUID, uuid.UUID, datetime]]) -> None:
        """(workspace, budget, period start) of budgets just exceeded: their condition, until they recover or
        a later period replaces it."""
        if not budgets:
            return
        rows = [
            {"workspace_id": w, "rule": EXCEEDED, "subject": str(b), "since": since, "fired_at": since, "data": {}}
            for w, b, since in sorted(budgets)
        ]
        statement = insert(AlertCondition).values(rows)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AlertCondition.workspace_id, AlertCondition.rule, AlertCondition.subject],
                set_={"since": statement.excluded.since, "fired_at": statement.excluded.fired_at},
            )
        )

    async def forget_watch(self, workspace_id: uuid.UUID, scope_type: str, scope_id: uuid.UUID) -> None:
        """A budget of the scope was created, changed or deleted: its next ingestion looks at every budget."""
        await self.session.execute(
            text("DELETE FROM usage.alert_conditions WHERE workspace_id = :w AND rule = :rule AND subject = :subject"),
            {"w": workspace_id, "rule": WATCH, "subject": f"{scope_type}:{scope_id}"},
        )

    async def clear_exceeded(self, budgets: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        """(workspace, budget) of budgets recovered or deleted."""
        if not budgets:
            return
        pairs = sorted(budgets)
        await self.session.execute(
            text(
                "DELETE FROM usage.alert_conditions c USING unnest(CAST(:w AS uuid[]), CAST(:b AS text[])) AS g(w, b) "
                "WHERE c.workspace_id = g.w AND c.rule = :rule AND c.subject = g.b"
            ),
            {"w": [w for w, _ in pairs], "b": [str(b) for _, b in pairs], "rule": EXCEEDED},
        )
