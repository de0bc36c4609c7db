"""What other services may do: list due keys, reveal one (audited), report a sync."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit import service as audit
from owr_keys.audit.repository import AuditRepository
from owr_keys.audit.service import Actor
from owr_keys.base import utcnow
from owr_keys.erasure import service as erasure
from owr_keys.keys.errors import KeyInactive, KeyNotFound
from owr_keys.keys.models import LAST_ERROR_MAX, OpenRouterKey
from owr_keys.keys.repository import REPORTED_FIELDS, DueRow, KeyRepository
from owr_keys.keys.schemas import KEY_LIKE
from owr_keys.metrics import REVEALS
from owr_keys.vault.crypto import SealedSecret, Vault
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.logging import LONG_TOKEN, get_logger, redact_text
from owr_shared.wire.keys import InvalidFilter, StatusReport, UpstreamAudit

log = get_logger(__name__)

# A report may not push `last_synced_at` into the future beyond clock skew, or the key would stop being due.
MAX_CLOCK_SKEW = timedelta(minutes=1)


async def due_keys(
    session: AsyncSession,
    *,
    interval_seconds: int,
    limit: int,
    invalid: InvalidFilter = "exclude",
) -> Sequence[OpenRouterKey]:
    cutoff = utcnow() - timedelta(seconds=interval_seconds)
    return await KeyRepository(session).due(cutoff, limit=limit, invalid=invalid)


async def claim_due_keys(
    session: AsyncSession,
    *,
    interval_seconds: int,
    limit: int,
    invalid: InvalidFilter = "exclude",
) -> list[DueRow]:
    """The next page of due keys for one scan, in fair order across workspaces, leased for half the sync
    interval (so the scan's next claim is its next page).

    The lease ends before the key falls due again, and it only keeps other scans off while the key's job
    waits or runs: a job that reports moves `last_synced_at` on, one that never reports (its worker died)
    leaves the key to a scan after the lease. ARQ's job id `sync_key:{id}` stays the last guard.
    """
    now = utcnow()
    return await KeyRepository(session).claim_due(
        now - timedelta(seconds=interval_seconds),
        now=now,
        until=now + timedelta(seconds=interval_seconds / 2),
        limit=limit,
        invalid=invalid,
    )


async def reveal(session: AsyncSession, vault: Vault, *, actor: Actor, key_id: uuid.UUID) -> Revealed:
    """Decrypt one key for a service, recording the reveal in the same transaction."""
    outcome = (await reveal_many(session, vault, actor=actor, key_ids=[key_id]))[key_id]
    if outcome == "not_found":
        raise KeyNotFound()
    if outcome == "inactive":
        raise KeyInactive()
    if outcome == "unreadable":
        raise KeyUnreadable()
    return outcome


@dataclass(frozen=True, slots=True)
class Revealed:
    """A decrypted key, the workspace it belongs to (the worker files its figures under it) and its name (for
    the alerts about it)."""

    plaintext: str = field(repr=False)
    workspace_id: uuid.UUID
    name: str | None = None


RevealOutcome = Revealed | Literal["not_found", "inactive", "unreadable"]


async def reveal_many(
    session: AsyncSession, vault: Vault, *, actor: Actor, key_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, RevealOutcome]:
    """Decrypt several keys in one query; each reveal is audited, in one flush with the others.

    A key that is gone, deactivated or unreadable is an outcome of its own, so one bad key never
    fails the keys revealed with it.
    """
    rows = await _rows_outside_erased(session, await KeyRepository(session).reveal_rows(key_ids))
    outcomes: dict[uuid.UUID, RevealOutcome] = {}
    events = []
    for key_id in key_ids:
        row = rows.get(key_id)
        if row is None:
            outcomes[key_id] = "not_found"
            continue
        if not row.is_active:
            outcomes[key_id] = "inactive"
            continue
        sealed = SealedSecret(row.ciphertext, row.nonce, row.wrapped_dek, row.dek_nonce, row.kek_version)
        try:
            plaintext = vault.open(sealed, workspace_id=row.workspace_id, key_id=row.id)
        except KeyUnreadable:
            REVEALS.labels("unreadable").inc()
            log.error("key_unreadable", key_id=str(row.id), workspace_id=str(row.workspace_id))
            outcomes[key_id] = "unreadable"
            continue
        outcomes[key_id] = Revealed(plaintext, row.workspace_id, row.name)
        events.append(audit.event_row(actor=actor, action="revealed", key_id=row.id, workspace_id=row.workspace_id))
        REVEALS.labels("ok").inc()
        log.info("key_revealed", key_id=str(row.id), workspace_id=str(row.workspace_id), actor_id=actor.id)
    await audit.record_many(session, events)
    return outcomes


async def _rows_outside_erased(session: AsyncSession, rows: Sequence[Any]) -> dict[uuid.UUID, Any]:
    """The rows by id, minus those of a workspace being or already erased (their audit row would outlive it)."""
    erased = await erasure.erased_among(session, {row.workspace_id for row in rows})
    return {row.id: row for row in rows if row.workspace_id not in erased}


def scrub_error(text: str | None) -> str | None:
    """Make an upstream error message safe to store and show: no keys or tokens, printable, bounded."""
    if text is None:
        return None
    cleaned = LONG_TOKEN.sub("***", KEY_LIKE.sub("***", redact_text(text)))
    cleaned = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cs") else " " for ch in cleaned).strip()
    if len(cleaned) > LAST_ERROR_MAX:
        cleaned = cleaned[: LAST_ERROR_MAX - 3] + "..."
    return cleaned or None


async def report_status(session: AsyncSession, *, actor: Actor, key_id: uuid.UUID, report: StatusReport) -> bool:
    """Apply one sync's outcome; False when an older report than the last applied one (recorded, ignored)."""
    outcome = (await report_many(session, actor=actor, reports={key_id: report}))[key_id]
    if outcome == "not_found":
        raise KeyNotFound()
    return outcome == "applied"


ReportOutcome = Literal["applied", "ignored", "not_found"]


async def report_many(
    session: AsyncSession, *, actor: Actor, reports: Mapping[uuid.UUID, StatusReport]
) -> dict[uuid.UUID, ReportOutcome]:
    """Apply sync outcomes; a report older than the one applied last is recorded but ignored.

    ARQ delivers at least once and jobs can finish out of order, so `last_synced_at` decides. The rows
    are locked in id order, so two batches over the same keys wait for each other instead of deadlocking.
    """
    repository = KeyRepository(session)
    # The erasure lock comes before the row locks, as in the erasure itself.
    erased = await erasure.erased_among(session, await repository.workspaces_of(list(reports)))
    locked = await repository.sync_states_for_update(list(reports))
    rows = {row.id: row for row in locked if row.workspace_id not in erased}
    outcomes: dict[uuid.UUID, ReportOutcome] = {}
    events = []
    updates: list[dict[str, Any]] = []
    now = utcnow()
    for key_id, report in reports.items():
        row = rows.get(key_id)
        if row is None:
            outcomes[key_id] = "not_found"
            continue
        synced_at: datetime = min(report.last_synced_at, now + MAX_CLOCK_SKEW)
        applied = row.last_synced_at is None or synced_at >= row.last_synced_at
        if applied:
            update = {name: getattr(report, name) for name in REPORTED_FIELDS if name in report.model_fields_set}
            update.update(
                id=key_id, status=report.status, last_synced_at=synced_at, last_error=scrub_error(report.last_error)
            )
            updates.append(update)
        outcomes[key_id] = "applied" if applied else "ignored"
        events.append(
            audit.event_row(
                actor=actor,
                action="status_reported",
                key_id=row.id,
                workspace_id=row.workspace_id,
                details={"status": report.status, "kind": report.kind, "applied": applied},
            )
        )
    await repository.apply_reports(updates, now=now)
    await audit.record_many(session, events)
    return outcomes


async def record_upstream(session: AsyncSession, *, actor: Actor, key_id: uuid.UUID, report: UpstreamAudit) -> None:
    """A write made at OpenRouter, into the key's audit trail once per upstream action (NotFound: key gone)."""
    key = await KeyRepository(session).get_any(key_id)
    if key is None:
        raise KeyNotFound()
    repository = AuditRepository(session)
    if await repository.has_action(key_id, report.action, str(report.action_id)):
        return
    details = report.model_dump(mode="json", exclude={"action"}, exclude_none=True)
    await audit.record(
        session, actor=actor, action=report.action, key_id=key_id, workspace_id=key.workspace_id, details=details
    )
