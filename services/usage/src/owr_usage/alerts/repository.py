"""SQL of the alerts domain: the outbox's events, their fan-out to deliveries, and the history of events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import page_rows
from owr_usage.alerts.models import AlertDelivery, AlertEvent
from owr_usage.channels.models import AlertChannel

# Many events at once (a rule's evaluation): each is written unless its workspace already has its dedup key,
# with one pending delivery per enabled channel that takes its type (narrowed to `channels` when not empty;
# an email channel only once its address is confirmed), as `fan_out` does for one.
_INSERT_EVENTS = text(
    """
WITH input AS (
    SELECT i.id, i.workspace_id, i.type, i.dedup_key, i.occurred_at, i.data::jsonb AS data,
           i.channels::jsonb AS channels
    FROM unnest(CAST(:ids AS uuid[]), CAST(:workspace_ids AS uuid[]), CAST(:types AS text[]),
                CAST(:dedup_keys AS text[]), CAST(:occurred_at AS timestamptz[]), CAST(:data AS text[]),
                CAST(:channels AS text[]))
        AS i(id, workspace_id, type, dedup_key, occurred_at, data, channels)
),
inserted AS (
    INSERT INTO usage.alert_events (id, workspace_id, type, dedup_key, occurred_at, data, created_at)
    SELECT id, workspace_id, type, dedup_key, occurred_at, data, now() FROM input
    ORDER BY workspace_id, dedup_key
    ON CONFLICT (workspace_id, dedup_key) DO NOTHING
    RETURNING id, workspace_id, type, dedup_key
),
deliveries AS (
    INSERT INTO usage.alert_deliveries
        (id, workspace_id, event_id, channel_id, status, attempts, next_attempt_at, created_at)
    SELECT gen_random_uuid(), e.workspace_id, e.id, c.id, 'pending', 0, now(), now()
    FROM inserted e
    JOIN input i ON i.id = e.id
    JOIN usage.alert_channels c
      ON c.workspace_id = e.workspace_id AND c.disabled_at IS NULL
     AND (c.events IS NULL OR e.type = ANY(c.events))
     AND (jsonb_array_length(i.channels) = 0 OR i.channels @> jsonb_build_array(c.id::text))
     AND (c.type <> 'email' OR c.email_confirmed_at IS NOT NULL)
    RETURNING event_id
)
SELECT e.id, e.workspace_id, e.type, e.dedup_key,
       (SELECT count(*) FROM deliveries d WHERE d.event_id = e.id) AS deliveries
FROM inserted e
"""
)


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_event(
        self,
        *,
        workspace_id: uuid.UUID,
        type: str,
        data: dict[str, Any],
        occurred_at: datetime,
        dedup_key: str | None,
    ) -> uuid.UUID | None:
        """The new event's id, or None when the workspace already has an event with `dedup_key`."""
        event_id = uuid.uuid4()
        statement = (
            pg_insert(AlertEvent)
            .values(
                id=event_id,
                workspace_id=workspace_id,
                type=type,
                data=data,
                occurred_at=occurred_at,
                dedup_key=dedup_key,
            )
            .on_conflict_do_nothing(index_elements=["workspace_id", "dedup_key"])
            .returning(AlertEvent.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def fan_out(
        self,
        *,
        event_id: uuid.UUID,
        workspace_id: uuid.UUID,
        type: str,
        channel_ids: Sequence[uuid.UUID] = (),
        only_channel: uuid.UUID | None = None,
    ) -> int:
        """One pending delivery per enabled channel that takes the event, due now (the database's clock); how many.

        `only_channel` names the one channel (a test event), whatever its `events`; otherwise a channel takes
        the type when its `events` is NULL or lists it, and `channel_ids` (a budget's) narrows when not empty.
        An email channel whose address is not confirmed takes only its `channel.confirmation`.
        """
        channel = AlertChannel
        conditions = [channel.workspace_id == workspace_id, channel.disabled_at.is_(None)]
        if type != "channel.confirmation" or only_channel is None:  # a confirmation goes to its one channel only
            conditions.append(or_(channel.type != "email", channel.email_confirmed_at.is_not(None)))
        if only_channel is not None:
            conditions.append(channel.id == only_channel)
        else:
            conditions.append(or_(channel.events.is_(None), channel.events.contains([type])))
            if channel_ids:
                conditions.append(channel.id.in_(list(channel_ids)))
        chosen = select(
            func.gen_random_uuid(),
            literal(workspace_id),
            literal(event_id),
            channel.id,
            literal("pending"),
            literal(0),
            func.now(),
        ).where(and_(*conditions))
        statement = insert(AlertDelivery).from_select(
            ["id", "workspace_id", "event_id", "channel_id", "status", "attempts", "next_attempt_at"], chosen
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def page_events(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[AlertEvent], int]:
        """The workspace's events, newest first, with their count."""
        query = (
            select(AlertEvent)
            .where(AlertEvent.workspace_id == workspace_id)
            .order_by(AlertEvent.occurred_at.desc(), AlertEvent.id.desc())
        )
        rows, total = await page_rows(self.session, query, offset=offset, limit=limit)
        return [row[0] for row in rows], total

    async def deliveries_of(self, event_ids: Sequence[uuid.UUID]) -> Sequence[AlertDelivery]:
        """The events' deliveries, by channel creation order within an event."""
        if not event_ids:
            return []
        query = (
            select(AlertDelivery)
            .where(AlertDelivery.event_id.in_(list(event_ids)))
            .order_by(AlertDelivery.event_id, AlertDelivery.created_at, AlertDelivery.id)
        )
        return (await self.session.execute(query)).scalars().all()

    async def insert_events(self, events: Sequence[dict[str, Any]]) -> Sequence[Row[Any]]:
        """Write many events and their deliveries in one statement; (id, workspace_id, type, dedup_key,
        deliveries) of those written.

        Each dict has `workspace_id`, `type`, `dedup_key`, `occurred_at`, `data` and `channels` (both JSON text).
        """
        if not events:
            return []
        params = {
            "ids": [uuid.uuid4() for _ in events],
            **{
                column: [event[key] for event in events]
                for column, key in (
                    ("workspace_ids", "workspace_id"),
                    ("types", "type"),
                    ("dedup_keys", "dedup_key"),
                    ("occurred_at", "occurred_at"),
                    ("data", "data"),
                    ("channels", "channels"),
                )
            },
        }
        return (await self.session.execute(_INSERT_EVENTS, params)).all()
