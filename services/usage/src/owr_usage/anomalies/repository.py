"""SQL of anomalies: the detection over many (key, day)s in one statement, and the reads; callers own the transaction.

Baselines are robust: for a key's day D, the same weekday of the `weeks` weeks before it (D-7, D-14, ...), from the
key's first day with a figure on (a day inside its history without a row spent nothing), judged on at least
`min_points` such days. A key that spent on half of those weekdays or fewer (occasional use, a weekday-only key's
weekend) is judged instead against its recent days with spend, any weekday (the `weeks` x 7 days before D), on at
least `min_points` of them. Money stays NUMERIC (exact medians: the mean of the two middle values); only the
z-scores are floats.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import deleted_rows
from owr_usage.anomalies.models import KeyAnomaly
from owr_usage.rollups.models import DailyKeyTotal


def _median(values: str) -> str:
    """The exact median of a NUMERIC array (the mean of its two middle values for an even count; NULL if empty)."""
    return (
        f"(SELECT avg(m.v) FROM (SELECT u.v FROM unnest({values}) AS u(v) ORDER BY u.v "  # noqa: S608 - fixed
        f"OFFSET (cardinality({values}) - 1) / 2 LIMIT 2 - cardinality({values}) % 2) AS m)"
    )


def _deviations(values: str, centre: str) -> str:
    return f"ARRAY(SELECT abs(u.v - {centre}) FROM unnest({values}) AS u(v))"  # noqa: S608 - fixed fragments


# Every kind is one branch of `found`; `scored` holds each target's figures against its baselines. The spread sigma of
# a baseline is 1.4826 x MAD (a normal's standard deviation), floored at `sigma_fraction` of the median (of the mean of
# the active days for an occasional key) and at `sigma_usd` (or one request), so a flat history cannot make a cent
# look like a storm.
_DETECT = text(
    f"""
WITH t AS (
    SELECT DISTINCT x.workspace_id, x.key_id, x.day, x.min_usd
    FROM unnest(CAST(:workspace_ids AS uuid[]), CAST(:key_ids AS uuid[]), CAST(:days AS date[]),
                CAST(:min_usd AS numeric[])) AS x(workspace_id, key_id, day, min_usd)
),
history AS (
    SELECT k.workspace_id, k.key_id,
           (SELECT min(u.day) FROM usage.daily_usage u
            WHERE u.key_id = k.key_id AND u.workspace_id = k.workspace_id) AS first_day,
           (SELECT min(u.day) FROM usage.daily_usage u
            WHERE u.key_id = k.key_id AND u.workspace_id = k.workspace_id AND u.model <> '') AS first_breakdown_day
    FROM (SELECT DISTINCT workspace_id, key_id FROM t) k
),
-- One row per target, built along laterals (never a join of two target-sized sets, which the planner, blind to
-- `unnest`'s size, would run as a nested loop): the day's own figures, then its baseline days as arrays.
days AS (
    SELECT t.workspace_id, t.key_id, t.day, t.min_usd,
           COALESCE(d.cost, 0) AS cost, COALESCE(d.breakdown, false) AS breakdown,
           CAST(COALESCE(d.requests, 0) AS numeric) AS requests,
           p.n, p.n_spent, p.n_active, p.costs, p.active_costs, p.requests_of, r.costs AS recent_costs
    FROM t
    JOIN history h ON h.workspace_id = t.workspace_id AND h.key_id = t.key_id
    LEFT JOIN LATERAL (
        SELECT x.cost, x.breakdown, x.requests FROM usage.daily_key_totals x
        WHERE x.workspace_id = t.workspace_id AND x.day = t.day AND x.key_id = t.key_id LIMIT 1
    ) d ON true
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, count(*) FILTER (WHERE q.cost > 0) AS n_spent,
               count(*) FILTER (WHERE q.breakdown) AS n_active,
               array_agg(COALESCE(q.cost, 0)) AS costs,
               array_agg(q.cost) FILTER (WHERE q.breakdown) AS active_costs,
               array_agg(CAST(q.requests AS numeric)) FILTER (WHERE q.breakdown) AS requests_of
        FROM generate_series(1, CAST(:weeks AS int)) AS w(n)
        LEFT JOIN LATERAL (
            SELECT x.cost, x.breakdown, x.requests FROM usage.daily_key_totals x
            WHERE x.workspace_id = t.workspace_id AND x.day = t.day - 7 * w.n AND x.key_id = t.key_id LIMIT 1
        ) q ON true
        WHERE t.day - 7 * w.n >= h.first_day
    ) p
    -- The recent days with spend, any weekday, only for a key judged on them (an occasional one): the same per-key
    -- figure as the day's and the weekdays' (`cost`, BYOK apart), one point of the (workspace_id, day, key_id) key
    -- per day (a range of it would read every key of the workspace). A lateral, not a scalar subquery in the select
    -- list: the inlined CTEs below would copy that subquery into each of its ~80 uses, each run again.
    LEFT JOIN LATERAL (
        SELECT array_agg(q.cost) AS costs
        FROM generate_series(1, 7 * CAST(:weeks AS int)) AS b(n)
        CROSS JOIN LATERAL (
            SELECT x.cost FROM usage.daily_key_totals x
            WHERE x.workspace_id = t.workspace_id AND x.day = t.day - b.n AND x.key_id = t.key_id LIMIT 1
        ) q
        WHERE q.cost > 0 AND p.n >= :min_points AND 2 * p.n_spent <= p.n
    ) r ON true
),
centres AS (
    SELECT d.*,
           d.n >= :min_points AND 2 * d.n_spent > d.n AS weekly,
           {_median("d.costs")} AS cost_median,
           {_median("d.recent_costs")} AS recent_median,
           (SELECT avg(u.v) FROM unnest(d.recent_costs) AS u(v)) AS recent_mean,
           {_median("d.active_costs")} AS active_cost_median,
           {_median("d.requests_of")} AS requests_median
    FROM days d
),
figures AS (
    SELECT c.*,
           {_median(_deviations("c.costs", "c.cost_median"))} AS cost_mad,
           {_median(_deviations("c.recent_costs", "c.recent_median"))} AS recent_mad,
           {_median(_deviations("c.active_costs", "c.active_cost_median"))} AS active_cost_mad,
           {_median(_deviations("c.requests_of", "c.requests_median"))} AS requests_mad
    FROM centres c
),
-- The spike's baseline, once the key has `min_points` weeks of history: the weekday's, or (an occasional key) the
-- recent days' with spend, if it has enough of them.
baselines AS (
    SELECT f.*,
           CASE WHEN f.n < :min_points THEN NULL WHEN f.weekly THEN 'weekday'
                WHEN cardinality(f.recent_costs) >= :min_points THEN 'active_days' END AS basis,
           CASE WHEN f.weekly THEN f.n ELSE cardinality(f.recent_costs) END AS basis_days,
           CASE WHEN f.weekly THEN f.cost_median ELSE f.recent_median END AS basis_median,
           CASE WHEN f.weekly THEN f.cost_mad ELSE f.recent_mad END AS basis_mad,
           CASE WHEN f.weekly THEN GREATEST(1.4826 * f.cost_mad, :sigma_fraction * f.cost_median, :sigma_usd)
                ELSE GREATEST(1.4826 * f.recent_mad, :sigma_fraction * f.recent_mean, :sigma_usd) END AS cost_sigma,
           GREATEST(1.4826 * f.active_cost_mad, :sigma_fraction * f.active_cost_median, :sigma_usd)
               AS active_cost_sigma,
           GREATEST(1.4826 * f.requests_mad, :sigma_fraction * f.requests_median, 1) AS requests_sigma
    FROM figures f
),
scored AS (
    SELECT b.*,
           CAST((b.cost - b.basis_median) / b.cost_sigma AS float8) AS cost_z,
           CAST((b.cost - b.active_cost_median) / b.active_cost_sigma AS float8) AS active_cost_z,
           CAST((b.requests - b.requests_median) / b.requests_sigma AS float8) AS requests_z
    FROM baselines b
),
spikes AS (
    SELECT s.*, s.basis IS NOT NULL AND s.cost - s.basis_median >= s.min_usd AND s.cost_z >= :spike_z AS spiked
    FROM scored s
),
new_models AS (
    SELECT t.workspace_id, t.key_id, t.day, u.model, sum(u.cost) AS cost, COALESCE(sum(u.requests), 0) AS requests,
           h.first_breakdown_day
    FROM t
    JOIN history h ON h.workspace_id = t.workspace_id AND h.key_id = t.key_id
    JOIN usage.daily_usage u ON u.workspace_id = t.workspace_id AND u.day = t.day AND u.key_id = t.key_id
    -- The earliest earlier use, along (key_id, day), so a model in use is met on the key's first days (a lateral
    -- with LIMIT: NOT EXISTS would become an anti join reading every earlier day).
    LEFT JOIN LATERAL (
        SELECT p.day FROM usage.daily_usage p
        WHERE p.key_id = t.key_id AND p.workspace_id = t.workspace_id AND p.day < t.day AND p.model = u.model
        ORDER BY p.day LIMIT 1
    ) seen ON true
    WHERE u.model <> '' AND h.first_breakdown_day <= t.day - CAST(:grace_days AS int) AND seen.day IS NULL
    GROUP BY t.workspace_id, t.key_id, t.day, u.model, h.first_breakdown_day
    HAVING sum(u.cost) > 0 OR COALESCE(sum(u.requests), 0) > 0
),
found AS (
    SELECT s.workspace_id, s.key_id, s.day, 'spend_spike' AS kind, s.cost_z AS score,
           jsonb_build_object(
               'spend_usd', s.cost::text, 'baseline_usd', trim_scale(s.basis_median)::text,
               'mad_usd', trim_scale(s.basis_mad)::text, 'baseline_days', s.basis_days, 'baseline', s.basis,
               'robust_z', round(CAST(s.cost_z AS numeric), 2)) AS evidence
    FROM spikes s
    WHERE s.spiked
    UNION ALL
    SELECT s.workspace_id, s.key_id, s.day, 'dormant_wakeup',
           CAST(s.cost / COALESCE(s.cost_sigma, :sigma_usd) AS float8),
           jsonb_build_object(
               'spend_usd', s.cost::text, 'last_spend_day', prev.day::text,
               'dormant_days', s.day - prev.day - 1)
    FROM spikes s
    CROSS JOIN LATERAL (
        SELECT max(u.day) AS day FROM usage.daily_usage u
        WHERE u.key_id = s.key_id AND u.workspace_id = s.workspace_id AND u.day < s.day AND u.cost > 0
    ) prev
    WHERE s.cost >= s.min_usd AND prev.day < s.day - CAST(:dormant_days AS int)
    UNION ALL
    SELECT m.workspace_id, m.key_id, m.day, 'new_model',
           CAST(sum(m.cost) / COALESCE(min(s.cost_sigma), :sigma_usd) AS float8),
           jsonb_build_object(
               'models', jsonb_agg(m.model ORDER BY m.model), 'spend_usd', sum(m.cost)::text,
               'requests', sum(m.requests), 'history_since', min(m.first_breakdown_day)::text)
    FROM new_models m
    JOIN spikes s ON s.workspace_id = m.workspace_id AND s.key_id = m.key_id AND s.day = m.day
    GROUP BY m.workspace_id, m.key_id, m.day
    UNION ALL
    -- Spend that moved alone is the day's `spend_spike` already when one was found: one incident, one anomaly.
    SELECT s.workspace_id, s.key_id, s.day, 'requests_spend_divergence', GREATEST(s.requests_z, s.active_cost_z),
           jsonb_build_object(
               'moved', CASE WHEN s.requests_z >= :spike_z THEN 'requests' ELSE 'spend' END,
               'requests', s.requests, 'requests_baseline', round(s.requests_median, 2),
               'requests_z', round(CAST(s.requests_z AS numeric), 2),
               'spend_usd', s.cost::text, 'baseline_usd', trim_scale(s.active_cost_median)::text,
               'spend_z', round(CAST(s.active_cost_z AS numeric), 2), 'baseline_days', s.n_active)
    FROM spikes s
    WHERE s.breakdown AND s.n_active >= :min_points AND (
        (s.requests_z >= :spike_z AND abs(s.active_cost_z) < :flat_z
         AND s.requests - s.requests_median >= :min_requests)
        OR (s.active_cost_z >= :spike_z AND abs(s.requests_z) < :flat_z
            AND s.cost - s.active_cost_median >= s.min_usd AND NOT s.spiked)
    )
),
written AS (
    INSERT INTO usage.key_anomalies AS a (workspace_id, key_id, day, kind, score, evidence, detected_at, updated_at)
    SELECT workspace_id, key_id, day, kind, round(CAST(score AS numeric), 2), evidence, now(), now() FROM found
    ORDER BY workspace_id, key_id, day, kind
    ON CONFLICT (workspace_id, key_id, day, kind) DO UPDATE
        SET score = EXCLUDED.score, evidence = EXCLUDED.evidence, updated_at = EXCLUDED.updated_at
        WHERE EXCLUDED.score > a.score
    RETURNING a.workspace_id, a.key_id, a.day, a.kind, a.score, a.evidence, (a.xmax = 0) AS new
)
SELECT w.workspace_id, w.key_id, w.day, w.kind, w.score, w.evidence, w.new, kl.label, ak.name AS key_name
FROM written w
LEFT JOIN usage.key_links kl ON kl.key_id = w.key_id AND kl.workspace_id = w.workspace_id
LEFT JOIN usage.account_keys ak
  ON ak.management_key_id = kl.management_key_id AND ak.hash = kl.api_key_hash AND ak.workspace_id = w.workspace_id
ORDER BY w.workspace_id, w.key_id, w.day, w.kind
"""  # noqa: S608 - fixed SQL fragments only
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What makes a day anomalous (the service's constants; docs/decisions.md)."""

    weeks: int
    min_points: int
    spike_z: float
    flat_z: float
    sigma_fraction: Decimal
    sigma_usd: Decimal
    min_requests: int
    dormant_days: int
    grace_days: int


@dataclass(frozen=True, slots=True)
class Target:
    """A key's day whose figures were just stored, with its workspace's `min_usd`."""

    workspace_id: uuid.UUID
    key_id: uuid.UUID
    day: date
    min_usd: Decimal


class AnomalyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def detect(self, targets: Sequence[Target], thresholds: Thresholds) -> Sequence[Row[Any]]:
        """Judge every target at once; store what is anomalous (a day's kind once, its score only ever rising).

        Rows: workspace_id, key_id, day, kind, score, evidence, `new` (inserted, not raised), label, key_name.
        """
        if not targets:
            return []
        params: dict[str, Any] = {
            "workspace_ids": [t.workspace_id for t in targets],
            "key_ids": [t.key_id for t in targets],
            "days": [t.day for t in targets],
            "min_usd": [t.min_usd for t in targets],
            "weeks": thresholds.weeks,
            "min_points": thresholds.min_points,
            "spike_z": thresholds.spike_z,
            "flat_z": thresholds.flat_z,
            "sigma_fraction": thresholds.sigma_fraction,
            "sigma_usd": thresholds.sigma_usd,
            "min_requests": Decimal(thresholds.min_requests),
            "dormant_days": thresholds.dormant_days,
            "grace_days": thresholds.grace_days,
        }
        return (await self.session.execute(_DETECT, params)).all()

    async def delete_before(self, cutoff_day: date) -> dict[str, int]:
        """Anomalies of days before `cutoff_day` (retention)."""
        removed = await deleted_rows(self.session, delete(KeyAnomaly).where(KeyAnomaly.day < cutoff_day))
        return {"key_anomalies": removed}

    async def days_of(self, workspace_id: uuid.UUID, key_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, date]]:
        """Every (key, day) with a figure of these keys of the workspace."""
        if not key_ids:
            return []
        rows = await self.session.execute(
            select(DailyKeyTotal.key_id, DailyKeyTotal.day).where(
                DailyKeyTotal.workspace_id == workspace_id, DailyKeyTotal.key_id.in_(key_ids)
            )
        )
        return [(row.key_id, row.day) for row in rows]

    async def page(
        self, workspace_id: uuid.UUID, *, first: date, last: date, key_id: uuid.UUID | None, limit: int, offset: int
    ) -> tuple[Sequence[KeyAnomaly], int]:
        """A page of the workspace's anomalies of [first, last], newest day first, and how many there are."""
        where = [KeyAnomaly.workspace_id == workspace_id, KeyAnomaly.day >= first, KeyAnomaly.day <= last]
        if key_id is not None:
            where.append(KeyAnomaly.key_id == key_id)
        query = (
            select(KeyAnomaly)
            .where(*where)
            .order_by(KeyAnomaly.day.desc(), KeyAnomaly.score.desc(), KeyAnomaly.key_id, KeyAnomaly.kind)
        )
        rows = (await self.session.scalars(query.limit(limit).offset(offset))).all()
        total = await self.session.scalar(select(func.count()).select_from(KeyAnomaly).where(*where))
        return rows, int(total or 0)
