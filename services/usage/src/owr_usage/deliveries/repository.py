"""SQL of deliveries: claiming due ones under a lease, their attempts, the backlog and a channel's log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import AnyRow, page_rows
from owr_usage.alerts.models import AlertDelivery, AlertDeliveryAttempt, AlertEvent
from owr_usage.channels.models import AlertChannel

PENDING = "pending"
DELIVERED = "delivered"
# A leased delivery: id, workspace_id, event_id, channel_id, attempts (reported so far).
LeasedRow = Row[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID, int]


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[LeasedRow]:
        """Lease up to `limit` due deliveries of enabled channels, oldest due first: `FOR UPDATE SKIP LOCKED`,
        so concurrent claims take disjoint rows. Rows (id, workspace_id, event_id, channel_id, attempts).

        An email channel whose address is not confirmed is sent its confirmation only; anything else to it (an
        event fanned out while its address changed) waits until it is confirmed."""
        delivery = AlertDelivery
        confirming = exists().where(AlertEvent.id == delivery.event_id, AlertEvent.type == "channel.confirmation")
        due = (
            select(delivery.id)
            .join(AlertChannel, AlertChannel.id == delivery.channel_id)
            .where(
                delivery.status == PENDING,
                delivery.next_attempt_at <= now,
                or_(delivery.lease_until.is_(None), delivery.lease_until <= now),
                AlertChannel.disabled_at.is_(None),
                or_(AlertChannel.type != "email", AlertChannel.email_confirmed_at.is_not(None), confirming),
            )
            .order_by(delivery.next_attempt_at, delivery.id)
            .limit(limit)
            .with_for_update(of=delivery, skip_locked=True)
        )
        ids = list((await self.session.execute(due)).scalars())
        if not ids:
            return []
        leased = (
            update(delivery)
            .where(delivery.id.in_(ids))
            .values(lease_until=lease_until)
            .returning(delivery.id, delivery.workspace_id, delivery.event_id, delivery.channel_id, delivery.attempts)
            .execution_options(synchronize_session=False)
        )
        rows = {row.id: row for row in (await self.session.execute(leased)).all()}
        return [rows[i] for i in ids]

    async def events(self, event_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AlertEvent]:
        rows = (await self.session.execute(select(AlertEvent).where(AlertEvent.id.in_(list(event_ids))))).scalars()
        return {row.id: row for row in rows}

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """Pending deliveries in all, and the time the oldest due one was due."""
        delivery = AlertDelivery
        query = select(
            func.count(),
            func.min(delivery.next_attempt_at).filter(delivery.next_attempt_at <= now),
        ).where(delivery.status == PENDING)
        depth, oldest = (await self.session.execute(query)).one()
        return int(depth), oldest

    async def channel_of(self, delivery_id: uuid.UUID) -> uuid.UUID | None:
        return await self.session.scalar(select(AlertDelivery.channel_id).where(AlertDelivery.id == delivery_id))

    async def get(
        self,
        delivery_id: uuid.UUID,
        *,
        workspace_id: uuid.UUID | None = None,
        channel_id: uuid.UUID | None = None,
        for_update: bool = False,
    ) -> AlertDelivery | None:
        query = select(AlertDelivery).where(AlertDelivery.id == delivery_id)
        if workspace_id is not None:
            query = query.where(AlertDelivery.workspace_id == workspace_id)
        if channel_id is not None:
            query = query.where(AlertDelivery.channel_id == channel_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def add_attempt(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(AlertDeliveryAttempt).values(**values))

    async def fail_pending(self, channel_id: uuid.UUID, error: str) -> int:
        """Every pending delivery of the channel fails (leased ones too: their result changes nothing)."""
        statement = (
            update(AlertDelivery)
            .where(AlertDelivery.channel_id == channel_id, AlertDelivery.status == PENDING)
            .values(status="failed", lease_until=None, next_attempt_at=None, last_error=error)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def log_page(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[list[AnyRow], int]:
        """The channel's attempts, newest first, each with its event's type and its delivery's status."""
        attempt = AlertDeliveryAttempt
        query = (
            select(
                attempt.delivery_id,
                attempt.event_id,
                AlertEvent.type.label("event_type"),
                AlertDelivery.status,
                attempt.attempt,
                attempt.at,
                attempt.status_code,
                attempt.error,
                attempt.next_attempt_at,
            )
            .join(AlertEvent, AlertEvent.id == attempt.event_id)
            .join(AlertDelivery, AlertDelivery.id == attempt.delivery_id)
            .where(attempt.workspace_id == workspace_id, attempt.channel_id == channel_id)
            .order_by(attempt.at.desc(), attempt.id.desc())
        )
        return await page_rows(self.session, query, offset=offset, limit=limit)
