"""SQL that keeps the daily rows and their rollups exact; callers own the transaction (key links: `links_repository`).

Every change of a (key, day)'s daily rows goes through `rebuild`: the old rows are deleted and subtracted
from `daily_model_totals`, the new rows are derived from `key_days` / `activity`, inserted, added to
`daily_model_totals`, and the key's day total is rewritten from them. Each statement works on the whole
set of targets at once (no per-row SQL). Writers take the workspace's rollup lock first (`lock_workspaces`),
so rollup rows never see two writers and a rebuild always reads the inputs the writers before it committed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import delete_workspace_rows, deleted_rows
from owr_usage.rollups.models import DailyKeyTotal, DailyModelTotal, DailyUsage, KeyLink, MonthlyKeyTotal

_LOCK_WORKSPACES = text(
    """
SELECT count(pg_advisory_xact_lock(lock_id)) FROM (
    SELECT DISTINCT hashtextextended('owr_usage.rollups:' || w::text, 0) AS lock_id
    FROM unnest(CAST(:workspace_ids AS uuid[])) AS w
    ORDER BY lock_id
) ordered
"""
)

# Every day a key has, or may now have, daily rows: its derived days, its link's fetched activity days,
# and the days it has rows for now.
_ALL_DAYS = text(
    """
SELECT kd.key_id, kd.day FROM usage.key_days kd WHERE kd.key_id = ANY(CAST(:key_ids AS uuid[]))
UNION
SELECT kl.key_id, ad.date FROM usage.key_links kl
JOIN usage.activity_days ad ON ad.management_key_id = kl.management_key_id AND ad.api_key_hash = kl.api_key_hash
WHERE kl.key_id = ANY(CAST(:key_ids AS uuid[]))
UNION
SELECT u.key_id, u.day FROM usage.daily_usage u WHERE u.key_id = ANY(CAST(:key_ids AS uuid[]))
"""
)

_TARGETS = """
t AS (
    SELECT DISTINCT x.key_id, x.day, ks.workspace_id
    FROM unnest(CAST(:key_ids AS uuid[]), CAST(:days AS date[])) AS x(key_id, day)
    JOIN usage.key_states ks ON ks.key_id = x.key_id
)"""

_MODEL_DELTA_UPSERT = """
INSERT INTO usage.daily_model_totals AS m
    (workspace_id, day, model, provider, cost, byok_cost, requests, prompt_tokens, completion_tokens,
     reasoning_tokens, rows, provisional_rows)
SELECT workspace_id, day, model, provider,
       {sign} sum(cost), {sign} sum(byok_cost), {sign} COALESCE(sum(requests), 0),
       {sign} COALESCE(sum(prompt_tokens), 0), {sign} COALESCE(sum(completion_tokens), 0),
       {sign} COALESCE(sum(reasoning_tokens), 0), {sign} count(*), {sign} count(*) FILTER (WHERE provisional)
FROM {source}
GROUP BY workspace_id, day, model, provider
ORDER BY workspace_id, day, model, provider
ON CONFLICT (workspace_id, day, model, provider) DO UPDATE SET
    cost = m.cost + EXCLUDED.cost,
    byok_cost = m.byok_cost + EXCLUDED.byok_cost,
    requests = m.requests + EXCLUDED.requests,
    prompt_tokens = m.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = m.completion_tokens + EXCLUDED.completion_tokens,
    reasoning_tokens = m.reasoning_tokens + EXCLUDED.reasoning_tokens,
    rows = m.rows + EXCLUDED.rows,
    provisional_rows = m.provisional_rows + EXCLUDED.provisional_rows
"""

_MONTH_DELTA_UPSERT = """
INSERT INTO usage.monthly_key_totals AS mk
    (workspace_id, key_id, month, cost, byok_cost, cost_without_breakdown, requests, prompt_tokens,
     completion_tokens, reasoning_tokens, rows, breakdown_rows, provisional_rows)
SELECT workspace_id, key_id, date_trunc('month', day)::date,
       {sign} sum(cost), {sign} sum(byok_cost), {sign} COALESCE(sum(cost) FILTER (WHERE model = ''), 0),
       {sign} COALESCE(sum(requests), 0), {sign} COALESCE(sum(prompt_tokens), 0),
       {sign} COALESCE(sum(completion_tokens), 0), {sign} COALESCE(sum(reasoning_tokens), 0),
       {sign} count(*), {sign} count(*) FILTER (WHERE model <> ''), {sign} count(*) FILTER (WHERE provisional)
FROM {source}
GROUP BY workspace_id, key_id, date_trunc('month', day)::date
ORDER BY workspace_id, key_id, date_trunc('month', day)::date
ON CONFLICT (workspace_id, key_id, month) DO UPDATE SET
    cost = mk.cost + EXCLUDED.cost,
    byok_cost = mk.byok_cost + EXCLUDED.byok_cost,
    cost_without_breakdown = mk.cost_without_breakdown + EXCLUDED.cost_without_breakdown,
    requests = mk.requests + EXCLUDED.requests,
    prompt_tokens = mk.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = mk.completion_tokens + EXCLUDED.completion_tokens,
    reasoning_tokens = mk.reasoning_tokens + EXCLUDED.reasoning_tokens,
    rows = mk.rows + EXCLUDED.rows,
    breakdown_rows = mk.breakdown_rows + EXCLUDED.breakdown_rows,
    provisional_rows = mk.provisional_rows + EXCLUDED.provisional_rows
"""

_ROW_COLUMNS = (
    "workspace_id, day, key_id, model, provider, cost, byok_cost, requests, prompt_tokens, completion_tokens, "
    "reasoning_tokens, provisional"
)

# Of (key, day)s whose key_days were re-derived, those whose daily rows change: a day that shows activity
# (linked key, fetched day) does not depend on key_days; any other mirrors its key_days row, so it changes
# only if that row appeared, went, or moved. (A key whose link changed is rebuilt in full elsewhere.)
_CHANGED_DAYS = text(
    f"""
WITH {_TARGETS}
SELECT t.key_id, t.day
FROM t
-- Lateral lookups by primary key (LIMIT keeps them from being flattened into a join the planner may
-- get wrong while the tables are young and unanalysed).
LEFT JOIN LATERAL (
    SELECT kd.key_id, kd.spend, kd.byok_spend, kd.final FROM usage.key_days kd
    WHERE kd.key_id = t.key_id AND kd.day = t.day
    LIMIT 1
) kd ON true
LEFT JOIN LATERAL (
    SELECT u.key_id, u.cost, u.byok_cost, u.provisional FROM usage.daily_usage u
    WHERE u.workspace_id = t.workspace_id AND u.day = t.day AND u.key_id = t.key_id AND u.model = ''
      AND u.provider = ''
    LIMIT 1
) u ON true
WHERE NOT EXISTS (
        SELECT 1 FROM usage.key_links kl
        JOIN usage.activity_days ad
          ON ad.management_key_id = kl.management_key_id AND ad.api_key_hash = kl.api_key_hash AND ad.date = t.day
        WHERE kl.key_id = t.key_id
      )
  AND ((kd.key_id IS NULL) <> (u.key_id IS NULL)
       OR kd.spend <> u.cost OR kd.byok_spend <> u.byok_cost OR kd.final = u.provisional)
"""  # noqa: S608 - fixed SQL fragments only
)

# 1. The targets' old rows go, and leave the model rollup; their key totals go too.
_REMOVE_OLD = text(
    f"""
WITH {_TARGETS},
old AS (
    DELETE FROM usage.daily_usage u USING t
    WHERE u.workspace_id = t.workspace_id AND u.day = t.day AND u.key_id = t.key_id
    RETURNING {", ".join("u." + c.strip() for c in _ROW_COLUMNS.split(","))}
),
old_key_totals AS (
    DELETE FROM usage.daily_key_totals k USING t
    WHERE k.workspace_id = t.workspace_id AND k.key_id = t.key_id AND k.day = t.day
),
old_months AS ({_MONTH_DELTA_UPSERT.format(sign="-", source="old")})
{_MODEL_DELTA_UPSERT.format(sign="-", source="old")}
"""  # noqa: S608 - fixed SQL fragments only
)

# 2. The targets' new rows: activity per (model, provider) for a linked key's fetched day, else key_days'
#    figure without a breakdown; inserted, added to the model rollup, summed into the key totals.
_INSERT_NEW = text(
    f"""
WITH {_TARGETS},
fetched AS (
    SELECT t.workspace_id, t.key_id, t.day, kl.management_key_id, kl.api_key_hash
    FROM t
    JOIN usage.key_links kl ON kl.key_id = t.key_id
    JOIN usage.activity_days ad
      ON ad.management_key_id = kl.management_key_id AND ad.api_key_hash = kl.api_key_hash AND ad.date = t.day
),
fresh AS (
    SELECT f.workspace_id, f.day, f.key_id, a.model, COALESCE(a.provider_name, '') AS provider,
           sum(a.usage) AS cost, sum(a.byok_usage_inference) AS byok_cost, sum(a.requests) AS requests,
           sum(a.prompt_tokens) AS prompt_tokens, sum(a.completion_tokens) AS completion_tokens,
           sum(a.reasoning_tokens) AS reasoning_tokens, false AS provisional
    FROM fetched f
    JOIN usage.activity a
      ON a.management_key_id = f.management_key_id AND a.api_key_hash = f.api_key_hash AND a.date = f.day
    GROUP BY f.workspace_id, f.day, f.key_id, a.model, COALESCE(a.provider_name, '')
    UNION ALL
    SELECT t.workspace_id, t.day, t.key_id, '', '', kd.spend, kd.byok_spend,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NOT kd.final
    FROM t
    JOIN usage.key_days kd ON kd.key_id = t.key_id AND kd.day = t.day
    WHERE NOT EXISTS (SELECT 1 FROM fetched f WHERE f.key_id = t.key_id AND f.day = t.day)
),
new AS (
    INSERT INTO usage.daily_usage ({_ROW_COLUMNS})
    SELECT {_ROW_COLUMNS} FROM fresh
    ORDER BY workspace_id, day, key_id, model, provider
    RETURNING {_ROW_COLUMNS}
),
new_key_totals AS (
    INSERT INTO usage.daily_key_totals
        (workspace_id, key_id, day, cost, byok_cost, requests, prompt_tokens, completion_tokens,
         reasoning_tokens, rows, provisional, breakdown)
    SELECT workspace_id, key_id, day, sum(cost), sum(byok_cost), COALESCE(sum(requests), 0),
           COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0),
           COALESCE(sum(reasoning_tokens), 0), count(*), bool_or(provisional), bool_and(model <> '')
    FROM new
    GROUP BY workspace_id, key_id, day
),
new_months AS ({_MONTH_DELTA_UPSERT.format(sign="", source="new")})
{_MODEL_DELTA_UPSERT.format(sign="", source="new")}
"""  # noqa: S608 - fixed SQL fragments only
)

# 3. A (model, provider) day or a key month left without rows leaves its rollup (its figures are then 0).
_DROP_EMPTY = text(
    f"""
WITH {_TARGETS},
empty_months AS (
    DELETE FROM usage.monthly_key_totals mk
    USING (SELECT DISTINCT workspace_id, key_id, date_trunc('month', day)::date AS month FROM t) m
    WHERE mk.workspace_id = m.workspace_id AND mk.key_id = m.key_id AND mk.month = m.month AND mk.rows = 0
)
DELETE FROM usage.daily_model_totals m
USING (SELECT DISTINCT workspace_id, day FROM t) d
WHERE m.workspace_id = d.workspace_id AND m.day = d.day AND m.rows = 0
"""  # noqa: S608 - fixed SQL fragments only
)


_SUMS = """sum(cost), sum(byok_cost), COALESCE(sum(requests), 0), COALESCE(sum(prompt_tokens), 0),
    COALESCE(sum(completion_tokens), 0), COALESCE(sum(reasoning_tokens), 0), count(*)"""
_BUILD_KEY_TOTALS = text(
    f"""
INSERT INTO usage.daily_key_totals
SELECT workspace_id, key_id, day, {_SUMS}, bool_or(provisional), bool_and(model <> '')
FROM usage.daily_usage GROUP BY workspace_id, key_id, day
"""  # noqa: S608 - fixed SQL fragments only
)
_BUILD_MODEL_TOTALS = text(
    f"""
INSERT INTO usage.daily_model_totals
SELECT workspace_id, day, model, provider, {_SUMS}, count(*) FILTER (WHERE provisional)
FROM usage.daily_usage GROUP BY workspace_id, day, model, provider
"""  # noqa: S608 - fixed SQL fragments only
)

_BUILD_MONTHS = text(
    """
INSERT INTO usage.monthly_key_totals
SELECT workspace_id, key_id, date_trunc('month', day)::date, sum(cost), sum(byok_cost),
       COALESCE(sum(cost) FILTER (WHERE NOT breakdown), 0), sum(requests), sum(prompt_tokens),
       sum(completion_tokens), sum(reasoning_tokens), sum(rows), COALESCE(sum(rows) FILTER (WHERE breakdown), 0),
       COALESCE(sum(rows) FILTER (WHERE provisional), 0)
FROM usage.daily_key_totals GROUP BY workspace_id, key_id, date_trunc('month', day)::date
"""
)

# Retention: a month cut by the cutoff loses exactly the key days that go (so it stays exact); months
# wholly before it go.
_RETENTION_MONTHS = text(
    """
WITH gone AS (
    SELECT workspace_id, key_id, date_trunc('month', day)::date AS month,
           sum(cost) AS cost, sum(byok_cost) AS byok_cost,
           COALESCE(sum(cost) FILTER (WHERE NOT breakdown), 0) AS cost_without_breakdown,
           sum(requests) AS requests, sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens, sum(reasoning_tokens) AS reasoning_tokens,
           sum(rows) AS rows, COALESCE(sum(rows) FILTER (WHERE breakdown), 0) AS breakdown_rows,
           COALESCE(sum(rows) FILTER (WHERE provisional), 0) AS provisional_rows
    FROM usage.daily_key_totals
    WHERE day >= date_trunc('month', CAST(:cutoff AS date))::date AND day < :cutoff
    GROUP BY workspace_id, key_id, date_trunc('month', day)::date
)
UPDATE usage.monthly_key_totals mk SET
    cost = mk.cost - g.cost,
    byok_cost = mk.byok_cost - g.byok_cost,
    cost_without_breakdown = mk.cost_without_breakdown - g.cost_without_breakdown,
    requests = mk.requests - g.requests,
    prompt_tokens = mk.prompt_tokens - g.prompt_tokens,
    completion_tokens = mk.completion_tokens - g.completion_tokens,
    reasoning_tokens = mk.reasoning_tokens - g.reasoning_tokens,
    rows = mk.rows - g.rows,
    breakdown_rows = mk.breakdown_rows - g.breakdown_rows,
    provisional_rows = mk.provisional_rows - g.provisional_rows
FROM gone g
WHERE mk.workspace_id = g.workspace_id AND mk.key_id = g.key_id AND mk.month = g.month
"""
)


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_workspaces(self, workspace_ids: Iterable[uuid.UUID]) -> None:
        """Take the rollup lock of each workspace (in a fixed order, so writers cannot deadlock) until commit."""
        ids = sorted(set(workspace_ids))
        if ids:
            await self.session.execute(_LOCK_WORKSPACES, {"workspace_ids": ids})

    async def all_days(self, key_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, dt.date]]:
        if not key_ids:
            return []
        rows = await self.session.execute(_ALL_DAYS, {"key_ids": sorted(set(key_ids))})
        return [(key_id, day) for key_id, day in rows.all()]

    async def changed_days(self, targets: Sequence[tuple[uuid.UUID, dt.date]]) -> list[tuple[uuid.UUID, dt.date]]:
        """The (key, day)s among `targets` (re-derived key_days) whose daily rows would change."""
        if not targets:
            return []
        ordered = sorted(set(targets))
        params = {"key_ids": [key for key, _ in ordered], "days": [day for _, day in ordered]}
        return [(key_id, day) for key_id, day in (await self.session.execute(_CHANGED_DAYS, params)).all()]

    async def rebuild(self, targets: Sequence[tuple[uuid.UUID, dt.date]]) -> None:
        """Replace the daily rows of these (key, day) pairs and move the rollups by the difference."""
        if not targets:
            return
        ordered = sorted(set(targets))
        params = {"key_ids": [key for key, _ in ordered], "days": [day for _, day in ordered]}
        await self.session.execute(_REMOVE_OLD, params)
        await self.session.execute(_INSERT_NEW, params)
        await self.session.execute(_DROP_EMPTY, params)

    async def build_from_rows(self) -> None:
        """Rebuild both rollups from `daily_usage` in one pass each: for a bulk load (the benchmark) or a
        repair, never on the ingestion path."""
        await self.session.execute(
            text("TRUNCATE usage.daily_key_totals, usage.daily_model_totals, usage.monthly_key_totals")
        )
        await self.session.execute(_BUILD_KEY_TOTALS)
        await self.session.execute(_BUILD_MODEL_TOTALS)
        await self.session.execute(_BUILD_MONTHS)

    # --- retention and erasure (internal API) --------------------------------------------------

    async def delete_before(self, cutoff_day: dt.date) -> dict[str, int]:
        """Daily rows and the rollups dated before `cutoff_day`; the month it cuts keeps its remaining days."""
        await self.session.execute(_RETENTION_MONTHS, {"cutoff": cutoff_day})
        months = await deleted_rows(
            self.session,
            delete(MonthlyKeyTotal).where(
                (MonthlyKeyTotal.month < cutoff_day.replace(day=1)) | (MonthlyKeyTotal.rows == 0)
            ),
        )
        return {
            "monthly_key_totals": months,
            "daily_usage": await deleted_rows(self.session, delete(DailyUsage).where(DailyUsage.day < cutoff_day)),
            "daily_key_totals": await deleted_rows(
                self.session, delete(DailyKeyTotal).where(DailyKeyTotal.day < cutoff_day)
            ),
            "daily_model_totals": await deleted_rows(
                self.session, delete(DailyModelTotal).where(DailyModelTotal.day < cutoff_day)
            ),
        }

    async def delete_workspace(self, workspace_id: uuid.UUID) -> dict[str, int]:
        models = (DailyUsage, DailyKeyTotal, DailyModelTotal, MonthlyKeyTotal, KeyLink)
        return await delete_workspace_rows(self.session, workspace_id, models)
