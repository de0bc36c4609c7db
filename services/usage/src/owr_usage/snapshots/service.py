"""Storing snapshots and deriving each key's daily spend from them (the rule is in the README)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_usage.anomalies import service as anomalies
from owr_usage.budgets import service as budgets
from owr_usage.erasure import service as erasure
from owr_usage.metrics import SNAPSHOTS_INGESTED
from owr_usage.reconciliation import service as reconciliation
from owr_usage.rollups import service as rollups
from owr_usage.snapshots.errors import WorkspaceMismatch
from owr_usage.snapshots.repository import SnapshotRepository
from owr_usage.snapshots.schemas import SnapshotItem, SnapshotsStored

log = get_logger(__name__)


def _row(item: SnapshotItem) -> dict[str, Any]:
    return {
        "key_id": item.key_id,
        "workspace_id": item.workspace_id,
        "observed_at": item.observed_at,
        **item.snapshot.model_dump(),
    }


async def ingest(session: AsyncSession, items: list[SnapshotItem]) -> SnapshotsStored:
    """Store new snapshots and re-derive the days they touch; redeliveries change nothing.

    A snapshot of day D changes start(D) (so D-1's final spend and D's) and D's provisional figure,
    never anything else: only D-1 and D are re-derived.
    """
    # A sync that outlived its account's deletion reports into an erased workspace: drop those items.
    erased = await erasure.erased_among(session, {item.workspace_id for item in items})
    kept = [item for item in items if item.workspace_id not in erased]
    workspaces: dict[uuid.UUID, uuid.UUID] = {}
    latest: dict[uuid.UUID, datetime] = {}
    for item in kept:
        if workspaces.setdefault(item.key_id, item.workspace_id) != item.workspace_id:
            raise WorkspaceMismatch()
        latest[item.key_id] = max(latest.get(item.key_id, item.observed_at), item.observed_at)
    if not kept:
        log.info("snapshots_ingested", stored=0, duplicates=0, erased=len(items), keys=0)
        return SnapshotsStored(stored=0, duplicates=0, erased=len(items))

    repo = SnapshotRepository(session)
    recorded = await repo.lock_keys(
        [{"key_id": k, "workspace_id": workspaces[k], "latest_observed_at": at} for k, at in latest.items()]
    )
    if any(recorded[key_id] != workspace_id for key_id, workspace_id in workspaces.items()):
        raise WorkspaceMismatch()

    inserted = await repo.insert_snapshots([_row(item) for item in kept])
    targets: set[tuple[uuid.UUID, date]] = set()
    for key_id, observed_at in inserted:
        day = observed_at.astimezone(UTC).date()
        targets.update({(key_id, day), (key_id, day - timedelta(days=1))})
    gaps_before = await reconciliation.gaps_among(session, targets)
    await repo.derive_days(sorted(targets))
    changed_days = await rollups.after_snapshots(session, workspaces, targets)
    changed = {key_id for key_id, _ in changed_days}
    reconciliation.count_new(gaps_before, await reconciliation.gaps_among(session, targets))
    # Budgets move only with figures; each workspace's "now" is OpenRouter's clock of its newest snapshot here.
    clocks: dict[uuid.UUID, datetime] = {}
    for key_id in changed:
        clocks[workspaces[key_id]] = max(clocks.get(workspaces[key_id], latest[key_id]), latest[key_id])
    await budgets.evaluate_keys(session, clocks, changed)
    await anomalies.evaluate(session, clocks, [(workspaces[key_id], key_id, day) for key_id, day in changed_days])

    stored = len(inserted)
    duplicates = len(kept) - stored
    SNAPSHOTS_INGESTED.labels("stored").inc(stored)
    SNAPSHOTS_INGESTED.labels("duplicate").inc(duplicates)
    SNAPSHOTS_INGESTED.labels("erased").inc(len(items) - len(kept))
    log.info(
        "snapshots_ingested", stored=stored, duplicates=duplicates, erased=len(items) - len(kept), keys=len(workspaces)
    )
    return SnapshotsStored(stored=stored, duplicates=duplicates, erased=len(items) - len(kept))
