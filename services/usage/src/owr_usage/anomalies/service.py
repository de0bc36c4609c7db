"""Anomalies per key: judged when a key's daily figures are stored, in that transaction, and raised as `key.anomaly`.

Kinds (`kind`), each against the key's own history (the SQL is `AnomalyRepository.detect`):

- `spend_spike`: the day's spend is `SPIKE_Z` robust deviations or more above the median of the same weekday over
  the last `WEEKS` weeks (of the recent days with spend, for a key that spent on half of those weekdays or fewer),
  and at least the rule's `min_usd` above it;
- `dormant_wakeup`: spend of at least `min_usd` after `DORMANT_DAYS` days or more without any;
- `new_model`: a model the key never used before, once its per-model history is `GRACE_DAYS` days old;
- `requests_spend_divergence`: requests spike while spend stays within `FLAT_Z` deviations of usual, or the reverse
  (unless that day is a `spend_spike` already).

`score` is the money (or requests) at stake in units of the key's usual spread sigma (1.4826 x MAD, floored): the robust
z of the figure that moved for spikes and divergences, the day's spend ÷ sigma for a wakeup, the new models' spend ÷ sigma.
"""

from __future__ import annotations

import uuid
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger
from owr_usage.alerts import service as alerts
from owr_usage.anomalies.repository import AnomalyRepository, Target, Thresholds
from owr_usage.anomalies.schemas import AnomalyItem, AnomalyPage
from owr_usage.key_actions import service as key_actions
from owr_usage.metrics import KEY_ANOMALIES_FOUND
from owr_usage.reports.service import check_key
from owr_usage.rules import service as rules
from owr_usage.rules.schemas import AnomalyParams

log = get_logger(__name__)

WEEKS = 8
MIN_POINTS = 3
SPIKE_Z = 6.0
FLAT_Z = 2.0
# sigma is never under a quarter of the median (of the mean of its days with spend, for an occasional key) nor under
# 10 cents (one request for request counts): eight points can show a MAD far under the key's real spread, and a spike
# must then still be 2.5 times the usual day.
SIGMA_FRACTION = Decimal("0.25")
SIGMA_USD = Decimal("0.1")
MIN_REQUESTS = 50
DORMANT_DAYS = 14
GRACE_DAYS = 7
# Events are news: an anomaly of a day older than this before the ingestion's clock (a backfill of history) is
# stored and listed, never announced.
FRESH_DAYS = 2
THRESHOLDS = Thresholds(
    weeks=WEEKS,
    min_points=MIN_POINTS,
    spike_z=SPIKE_Z,
    flat_z=FLAT_Z,
    sigma_fraction=SIGMA_FRACTION,
    sigma_usd=SIGMA_USD,
    min_requests=MIN_REQUESTS,
    dormant_days=DORMANT_DAYS,
    grace_days=GRACE_DAYS,
)


@dataclass(frozen=True, slots=True)
class FoundAnomaly:
    """An anomaly this transaction found (`new`) or scored higher than before: what a kill switch looks at."""

    workspace_id: uuid.UUID
    key_id: uuid.UUID
    day: date
    kind: str
    score: float
    new: bool


# What each open transaction found so far, for a step later in it (a kill switch) to act on before it commits.
_FOUND: weakref.WeakKeyDictionary[SessionTransaction, list[FoundAnomaly]] = weakref.WeakKeyDictionary()


def found_in(session: AsyncSession) -> list[FoundAnomaly]:
    """The anomalies new or scored higher in `session`'s current transaction so far (oldest first)."""
    transaction = session.sync_session.get_transaction()
    return list(_FOUND.get(transaction, ())) if transaction is not None else []


async def evaluate(
    session: AsyncSession,
    clocks: Mapping[uuid.UUID, datetime],
    days: Iterable[tuple[uuid.UUID, uuid.UUID, date]],
) -> list[FoundAnomaly]:
    """Judge the (workspace, key, day)s whose figures this transaction stored, store and announce what departs from
    the key's history, and answer the anomalies new or raised here. `clocks` is each workspace's "now" (OpenRouter's
    time of the ingestion): events go out for days at most `FRESH_DAYS` before it. `found_in` gathers them per
    transaction."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    switches = await rules.switches_of(session, {workspace for workspace, _, _ in wanted})
    params = {w: cast(AnomalyParams, s["key.anomaly"].params) for w, s in switches.items()}
    targets = [Target(w, k, d, params[w].min_usd) for w, k, d in wanted]
    rows = await AnomalyRepository(session).detect(targets, THRESHOLDS)
    events: list[alerts.NewEvent] = []
    found: list[FoundAnomaly] = []
    for row in rows:
        found.append(FoundAnomaly(row.workspace_id, row.key_id, row.day, row.kind, row.score, row.new))
        if row.new:
            KEY_ANOMALIES_FOUND.labels(row.kind).inc()
        switch = switches[row.workspace_id]["key.anomaly"]
        at = clocks[row.workspace_id]
        fresh = row.day >= at.date() - timedelta(days=FRESH_DAYS)
        # A score raised past `min_score` later in the day is news too; the dedup key keeps it to one event.
        if switch.enabled and fresh and row.score >= params[row.workspace_id].min_score:
            events.append(_event(row, at))
    raised = await alerts.raise_events(session, events)
    # The kill switch: a fresh anomaly reaching its key's threshold disables the key at OpenRouter (once per key,
    # day and kind; a backfill of history never does).
    fresh = [a for a in found if a.day >= clocks[a.workspace_id].date() - timedelta(days=FRESH_DAYS)]
    await key_actions.disable_on_anomalies(session, fresh)
    transaction = session.sync_session.get_transaction()
    if transaction is not None and found:
        _FOUND.setdefault(transaction, []).extend(found)
    if found:
        kinds: dict[str, int] = defaultdict(int)
        for anomaly in found:
            kinds[anomaly.kind] += 1
        log.info("key_anomalies_found", anomalies=len(found), kinds=dict(kinds), raised=raised)
    return found


async def evaluate_keys(
    session: AsyncSession, workspace_id: uuid.UUID, now: datetime, key_ids: Iterable[uuid.UUID]
) -> list[FoundAnomaly]:
    """`evaluate` over every day with a figure of the workspace's keys `key_ids` (a key linked anew)."""
    days = await AnomalyRepository(session).days_of(workspace_id, sorted(set(key_ids)))
    return await evaluate(session, {workspace_id: now}, [(workspace_id, key, day) for key, day in days])


def _event(row: Any, at: datetime) -> alerts.NewEvent:
    key, day = str(row.key_id), row.day.isoformat()
    evidence: dict[str, Any] = dict(row.evidence)
    data = {
        "key_id": key,
        "key_name": row.key_name or row.label,
        "label": row.label,
        "day": day,
        "kind": row.kind,
        "score": row.score,
        "evidence": evidence,
        # The figures a channel's one-line text shows (the worker's `key.anomaly` wording).
        "spend_usd": evidence.get("spend_usd"),
        "baseline_usd": evidence.get("baseline_usd"),
    }
    return alerts.NewEvent(
        workspace_id=row.workspace_id,
        type="key.anomaly",
        data=data,
        occurred_at=at,
        dedup_key=f"key.anomaly:{key}:{day}:{row.kind}",
    )


async def listing(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    first: date,
    last: date,
    key_id: uuid.UUID | None,
    paging: Pagination,
) -> AnomalyPage:
    """A page of the workspace's anomalies of [first, last], newest day first; an unknown key is a 404."""
    await check_key(session, workspace_id, key_id)
    rows, total = await AnomalyRepository(session).page(
        workspace_id, first=first, last=last, key_id=key_id, limit=paging.per_page, offset=paging.offset
    )
    return AnomalyPage(
        items=[AnomalyItem(key_id=r.key_id, day=r.day, kind=r.kind, score=r.score, evidence=r.evidence) for r in rows],
        total=total,
        page=paging.page,
        per_page=paging.per_page,
    )
