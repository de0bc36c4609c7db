"""The digests: one `report.weekly` or `report.monthly` event per workspace and period, for the workspaces with a
channel that takes it, written to the outbox like any event (the worker renders and sends it).

The period is the last complete one at `at` (the week from Monday, the month from the 1st, UTC); the event's
dedup key `report.{kind}:{period start}` makes a repeated request, or a second worker's, write nothing. The
workspaces are done in chunks, each part of the digest in one statement per chunk.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import DigestKind, EventType
from owr_usage.alerts import service as alerts
from owr_usage.alerts.service import money
from owr_usage.budgets.periods import Period, window
from owr_usage.digests.repository import DigestRepository
from owr_usage.erasure import service as erasure

log = get_logger(__name__)

CHUNK = 200
TOP = 5
LISTED = 20  # keys listed per kind (the counts say how many there are)
DORMANT_DAYS = 14


def periods(kind: DigestKind, at: datetime) -> tuple[date, date, date]:
    """(previous period's start, the digest period's start, its end): the last complete period at `at`."""
    span: Period = "weekly" if kind == "weekly" else "monthly"
    end = window(span, at)[0]
    start = window(span, end - timedelta(microseconds=1))[0]
    previous = window(span, start - timedelta(microseconds=1))[0]
    return previous.date(), start.date(), end.date()


async def write_digests(session: AsyncSession, kind: DigestKind, at: datetime) -> int:
    """Raise the period's digest for every workspace that takes it and has not had it; how many."""
    previous, start, end = periods(kind, at)
    event_type = cast(EventType, f"report.{kind}")
    dedup_key = f"{event_type}:{start.isoformat()}"
    repo = DigestRepository(session)
    wanted = await repo.recipients(event_type, dedup_key)
    erased = await erasure.erased_among(session, wanted)
    workspaces = [w for w in wanted if w not in erased]
    raised = 0
    for first in range(0, len(workspaces), CHUNK):
        chunk = workspaces[first : first + CHUNK]
        digests = await _digests(repo, chunk, kind, previous, start, end, at)
        events = [
            alerts.NewEvent(workspace_id=w, type=event_type, data=digests[w], occurred_at=at, dedup_key=dedup_key)
            for w in chunk
        ]
        raised += await alerts.raise_events(session, events)
    log.info("digests_written", kind=kind, period_start=start.isoformat(), workspaces=len(workspaces), raised=raised)
    return raised


async def _digests(
    repo: DigestRepository,
    chunk: Sequence[uuid.UUID],
    kind: DigestKind,
    previous: date,
    start: date,
    end: date,
    at: datetime,
) -> dict[uuid.UUID, dict[str, Any]]:
    totals = {row.workspace_id: row for row in await repo.totals(chunk, previous, start, end)}
    top_keys: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in await repo.top_keys(chunk, start, end, TOP):
        top_keys[row.workspace_id].append(
            {"key_id": str(row.key_id), "label": row.label, "spend_usd": money(row.spend)}
        )
    top_models: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in await repo.top_models(chunk, start, end, TOP):
        top_models[row.workspace_id].append({"model": row.model, "spend_usd": money(row.spend)})
    keys: dict[uuid.UUID, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"unlimited": [], "dormant": [], "expiring": []}
    )
    expiring_until = at + (end - start)  # until about the next digest
    for row in await repo.keys(chunk, end - timedelta(days=DORMANT_DAYS), end):
        about = {"key_id": str(row.key_id), "label": row.label}
        lists = keys[row.workspace_id]
        if row.unlimited:
            lists["unlimited"].append(about)
        if row.dormant:
            lists["dormant"].append(about)
        if row.expires_at is not None and at < row.expires_at <= expiring_until:
            lists["expiring"].append({**about, "expires_at": row.expires_at.isoformat()})
    digests = {}
    for workspace_id in chunk:
        total = totals.get(workspace_id)
        spend = total.spend if total else Decimal(0)
        before = total.previous_spend if total else Decimal(0)
        lists = keys[workspace_id]
        digests[workspace_id] = {
            "kind": kind,
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "previous_period": {"start": previous.isoformat(), "end": start.isoformat()},
            "spend_usd": money(spend),
            "byok_spend_usd": money(total.byok_spend if total else Decimal(0)),
            "provisional": bool(total.provisional) if total else False,
            "previous_spend_usd": money(before),
            "change_percent": money(((spend - before) / before * 100).quantize(Decimal("0.01"))) if before else None,
            "top_keys": top_keys[workspace_id],
            "top_models": top_models[workspace_id],
            "keys_without_limit": {"count": len(lists["unlimited"]), "keys": lists["unlimited"][:LISTED]},
            "dormant_keys": {
                "days": DORMANT_DAYS,
                "count": len(lists["dormant"]),
                "keys": lists["dormant"][:LISTED],
            },
            "expiring_keys": {"count": len(lists["expiring"]), "keys": lists["expiring"][:LISTED]},
        }
    return digests
