"""The outbox: an event is written in the transaction of the state change that raised it, with its deliveries;
and the workspace's history of events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_shared.logging import get_logger
from owr_shared.wire.alerts import EventType
from owr_usage.alerts.repository import AlertRepository
from owr_usage.alerts.schemas import AlertEventView

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
