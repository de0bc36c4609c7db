"""Recording audit events, in the caller's transaction, with the request id of the current request."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit.models import Action, ActorType, AuditEvent
from owr_keys.audit.repository import AuditRepository
from owr_shared.context import request_id_var


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (their id) or a service (its client id, the token's `sub`)."""

    type: ActorType
    id: str


def event(
    *,
    actor: Actor,
    action: Action,
    key_id: uuid.UUID,
    workspace_id: uuid.UUID,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """One event, stamped with the current request id. `details` holds no secret."""
    return AuditEvent(
        key_id=key_id,
        workspace_id=workspace_id,
        actor_type=actor.type,
        actor_id=actor.id[:128],
        action=action,
        request_id=request_id_var.get(),
        details=details or {},
    )


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: Action,
    key_id: uuid.UUID,
    workspace_id: uuid.UUID,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one event; it commits or rolls back with the change it describes."""
    await AuditRepository(session).add(
        event(actor=actor, action=action, key_id=key_id, workspace_id=workspace_id, details=details)
    )


def event_row(
    *,
    actor: Actor,
    action: Action,
    key_id: uuid.UUID,
    workspace_id: uuid.UUID,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The same event as `event`, as a plain row for `record_many` (no ORM object to build and flush)."""
    return {
        "key_id": key_id,
        "workspace_id": workspace_id,
        "actor_type": actor.type,
        "actor_id": actor.id[:128],
        "action": action,
        "request_id": request_id_var.get(),
        "details": json.dumps(details or {}, separators=(",", ":")),
    }


async def record_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert several events (rows from `event_row`) in one statement (the internal batch endpoints)."""
    if rows:
        await AuditRepository(session).insert_rows(rows)
