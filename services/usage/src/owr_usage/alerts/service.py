"""The outbox: an event is written in the transaction of the state change that raised it, with its deliveries;
and the workspace's history of events."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger
from owr_shared.wire import codec
from owr_shared.wire.alerts import EventType
from owr_usage.alerts.nudge import nudge_after_commit
from owr_usage.alerts.repository import AlertRepository
from owr_usage.alerts.schemas import AlertEventView
from owr_usage.metrics import ALERT_EVENTS_RAISED

log = get_logger(__name__)


async def raise_event(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    type: EventType,
    data: dict[str, Any],
    occurred_at: datetime,
    dedup_key: str | None = None,
    channel_ids: Sequence[uuid.UUID] = (),
    only_channel: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Write the event and one delivery per channel that takes it, due at once; the event's id.

    `dedup_key` is the event's identity, e.g. `budget:{id}:{period_start}:{threshold}`: a second event with the
    same key in the workspace writes nothing and answers None, so a rule may call this on every sync.
    `data` must be JSON (strings, numbers as strings for money, ISO times). Nothing is sent here: the worker
    claims the deliveries after this transaction commits.
    """
    repository = AlertRepository(session)
    event_id = await repository.insert_event(
        workspace_id=workspace_id, type=type, data=data, occurred_at=occurred_at, dedup_key=dedup_key
    )
    if event_id is None:
        return None
    nudge_after_commit(session)
    deliveries = await repository.fan_out(
        event_id=event_id,
        workspace_id=workspace_id,
        type=type,
        channel_ids=channel_ids,
        only_channel=only_channel,
    )
    log.info("alert_event_raised", event_type=type, event_id=str(event_id), deliveries=deliveries)
    return event_id


async def list_events(
    session: AsyncSession, *, workspace_id: uuid.UUID, paging: Pagination
) -> tuple[list[AlertEventView], int]:
    """The workspace's events, newest first, each with its deliveries' state."""
    repository = AlertRepository(session)
    events, total = await repository.page_events(workspace_id, offset=paging.offset, limit=paging.per_page)
    deliveries: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for delivery in await repository.deliveries_of([event.id for event in events]):
        deliveries[delivery.event_id].append(
            {"channel_id": delivery.channel_id, "status": delivery.status, "attempts": delivery.attempts}
        )
    items = [
        AlertEventView.model_validate(
            {"id": e.id, "type": e.type, "at": e.occurred_at, "data": e.data, "deliveries": deliveries[e.id]}
        )
        for e in events
    ]
    return items, total


def money(value: Decimal) -> str:
    """Money in an event's data: exact decimal text, never an exponent."""
    return format(value, "f")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a rule calls for: `raise_events` writes it unless its workspace had its `dedup_key` already."""

    workspace_id: uuid.UUID
    type: EventType
    data: dict[str, Any]
    occurred_at: datetime
    dedup_key: str
    channel_ids: Sequence[uuid.UUID] = field(default=())


async def raise_events(session: AsyncSession, events: Sequence[NewEvent]) -> int:
    """`raise_event` for many events in one statement (a rule's whole evaluation); how many were new."""
    return len(await write_events(session, events))


async def write_events(session: AsyncSession, events: Sequence[NewEvent]) -> list[NewEvent]:
    """`raise_events`, answering the events that were new (the others' dedup keys were raised before)."""
    if not events:
        return []
    rows = [
        {
            "workspace_id": event.workspace_id,
            "type": event.type,
            "dedup_key": event.dedup_key,
            "occurred_at": event.occurred_at,
            "data": codec.dumps(event.data).decode(),
            "channels": codec.dumps([str(c) for c in event.channel_ids]).decode(),
        }
        for event in events
    ]
    written = await AlertRepository(session).insert_events(rows)
    by_type = Counter(row.type for row in written)
    for event_type, count in by_type.items():
        ALERT_EVENTS_RAISED.labels(event_type).inc(count)
    if written:
        log.info(
            "alert_events_raised",
            events=len(written),
            types=dict(by_type),
            deliveries=sum(int(row.deliveries) for row in written),
        )
        nudge_after_commit(session)
    new = {(row.workspace_id, row.dedup_key) for row in written}
    return [event for event in events if (event.workspace_id, event.dedup_key) in new]
