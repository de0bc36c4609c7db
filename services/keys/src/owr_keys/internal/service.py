"""What other services may do: list due keys, reveal one (audited), report a sync, erase a workspace."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit import service as audit
from owr_keys.audit.repository import AuditRepository
from owr_keys.audit.service import Actor
from owr_keys.internal.schemas import StatusReport
from owr_keys.keys.errors import KeyInactive, KeyNotFound
from owr_keys.keys.models import LAST_ERROR_MAX, OpenRouterKey
from owr_keys.keys.repository import KeyRepository
from owr_keys.keys.schemas import KEY_LIKE
from owr_keys.metrics import REVEALS
from owr_keys.models import utcnow
from owr_keys.vault.crypto import Vault
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.logging import get_logger, redact_text

log = get_logger(__name__)

# A report may not push `last_synced_at` into the future beyond clock skew, or the key would stop being due.
MAX_CLOCK_SKEW = timedelta(minutes=1)
_REPORTED_FIELDS = ("kind", "limit", "limit_reset", "limit_remaining", "expires_at")
# A long unbroken run of token characters may be a key without its prefix (its 64 hex digits, say).
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,}")


async def due_keys(session: AsyncSession, *, interval_seconds: int, limit: int) -> Sequence[OpenRouterKey]:
    return await KeyRepository(session).due(utcnow() - timedelta(seconds=interval_seconds), limit=limit)


async def reveal(session: AsyncSession, vault: Vault, *, actor: Actor, key_id: uuid.UUID) -> str:
    """Decrypt the key for a service, recording the reveal in the same transaction."""
    row = await KeyRepository(session).get_any(key_id)
    if row is None:
        raise KeyNotFound()
    if not row.is_active:
        raise KeyInactive()
    try:
        plaintext = vault.open(row.sealed, workspace_id=row.workspace_id, key_id=row.id)
    except KeyUnreadable:
        REVEALS.labels("unreadable").inc()
        raise
    await audit.record(session, actor=actor, action="revealed", key_id=row.id, workspace_id=row.workspace_id)
    REVEALS.labels("ok").inc()
    log.info("key_revealed", key_id=str(row.id), workspace_id=str(row.workspace_id), actor_id=actor.id)
    return plaintext


def scrub_error(text: str | None) -> str | None:
    """Make an upstream error message safe to store and show: no keys or tokens, printable, bounded."""
    if text is None:
        return None
    cleaned = _LONG_TOKEN.sub("***", KEY_LIKE.sub("***", redact_text(text)))
    cleaned = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cs") else " " for ch in cleaned).strip()
    if len(cleaned) > LAST_ERROR_MAX:
        cleaned = cleaned[: LAST_ERROR_MAX - 3] + "..."
    return cleaned or None


async def report_status(session: AsyncSession, *, actor: Actor, key_id: uuid.UUID, report: StatusReport) -> bool:
    """Apply a sync's outcome; a report older than the one applied last is recorded but ignored.

    ARQ delivers at least once and jobs can finish out of order, so `last_synced_at` decides.
    """
    row = await KeyRepository(session).get_any(key_id, for_update=True)
    if row is None:
        raise KeyNotFound()
    synced_at: datetime = min(report.last_synced_at, utcnow() + MAX_CLOCK_SKEW)
    applied = row.last_synced_at is None or synced_at >= row.last_synced_at
    if applied:
        for field in _REPORTED_FIELDS:
            if field in report.model_fields_set:
                setattr(row, field, getattr(report, field))
        row.status = report.status
        row.last_synced_at = synced_at
        row.last_error = scrub_error(report.last_error)
    await audit.record(
        session,
        actor=actor,
        action="status_reported",
        key_id=row.id,
        workspace_id=row.workspace_id,
        details={"status": report.status, "kind": report.kind, "applied": applied},
    )
    await session.flush()
    return applied


async def delete_workspace(session: AsyncSession, *, workspace_id: uuid.UUID) -> None:
    """Erase the workspace's keys and their audit history; nothing there is not an error."""
    keys = await KeyRepository(session).delete_workspace(workspace_id)
    events = await AuditRepository(session).delete_workspace(workspace_id)
    log.info("workspace_erased", workspace_id=str(workspace_id), keys=keys, audit_events=events)
