"""The delivery state machine: the worker claims due deliveries under a lease and reports each attempt; a user
reads a channel's log and asks for a delivery again.

`pending` (due at `next_attempt_at`; leased while `lease_until` is set) → `delivered` on a 2xx, or back to
`pending` after the backoff (`schedule.retry_delay` over `USAGE_DELIVERY_RETRY_SECONDS`) until the schedule is
spent → `failed`. At least once: a
lease that runs out is claimed again, with the same event id; a report for a delivery that is no longer leased
and pending changes nothing. Locks are taken channel first, then delivery, everywhere.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_shared.envelope import Envelope
from owr_shared.logging import get_logger
from owr_shared.wire.alerts import (
    ERROR_MAX,
    ChannelTarget,
    ClaimedDeliveries,
    ClaimedDelivery,
    ClaimedEvent,
    DeliveryClaim,
    DeliveryResult,
    DeliveryState,
    OutboxBacklog,
)
from owr_usage.alerts.models import AlertDelivery
from owr_usage.channels import confirmation
from owr_usage.channels import service as channels
from owr_usage.channels.errors import ChannelDisabled, ChannelUnreadable, EmailNotConfirmed
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.models import AlertChannel, ChannelSecret
from owr_usage.channels.repository import ChannelRepository
from owr_usage.channels.schemas import DeliveryAttemptView, RetryQueued
from owr_usage.deliveries.errors import DeliveryDelivered, DeliveryInFlight, DeliveryNotFound
from owr_usage.deliveries.repository import DELIVERED, PENDING, DeliveryRepository
from owr_usage.deliveries.schedule import BACKOFF_SECONDS, FAILING_FOR, FAILURES_IN_A_ROW, retry_delay
from owr_usage.metrics import ALERT_DELIVERIES_CLAIMED, ALERT_DELIVERIES_REPORTED

log = get_logger(__name__)

GONE_REASON = "the receiver answered 410 Gone"
UNREADABLE_ERROR = "the channel's stored target or secret could not be decrypted"
# Draws the backoff's jitter (not a secret: timing only).
_JITTER = random.Random()  # noqa: S311


def _failing_reason() -> str:
    hours = int(FAILING_FOR.total_seconds() // 3600)
    return f"every delivery failed for over {hours} hours ({FAILURES_IN_A_ROW} or more attempts in a row)"


async def claim(
    session: AsyncSession,
    envelope: Envelope,
    *,
    actor: str,
    request: DeliveryClaim,
    now: datetime,
    public_base_url: str,
    schedule: Sequence[float] = BACKOFF_SECONDS,
    rng: random.Random = _JITTER,
) -> ClaimedDeliveries:
    """Lease due deliveries with their events and their channels revealed (one `revealed` audit row per channel);
    a channel whose values do not open has its deliveries' attempts fail instead. A `channel.confirmation`
    carries a newly minted link (`confirmation.mint_link`). With the outbox's backlog."""
    repository = DeliveryRepository(session)
    rows = await repository.claim_due(
        now=now, lease_until=now + timedelta(seconds=request.lease_seconds), limit=request.limit
    )
    items: list[ClaimedDelivery] = []
    if rows:
        found = await ChannelRepository(session).by_ids({row.channel_id for row in rows})
        events = await repository.events({row.event_id for row in rows})
        revealed = await _reveal(session, envelope, found, actor=actor, now=now)
        for row in rows:
            target = revealed.get(row.channel_id)
            if target is None:
                await report(
                    session,
                    delivery_id=row.id,
                    result=DeliveryResult(outcome="failed", error=UNREADABLE_ERROR),
                    now=now,
                    schedule=schedule,
                    rng=rng,
                )
                continue
            event = events[row.event_id]
            link = None
            if event.type == "channel.confirmation":
                link = await confirmation.mint_link(
                    session, channel_id=row.channel_id, workspace_id=row.workspace_id, base_url=public_base_url, now=now
                )
            items.append(
                ClaimedDelivery(
                    id=row.id,
                    attempt=row.attempts + 1,
                    event=ClaimedEvent.model_validate(event, from_attributes=True),
                    channel=target,
                    confirmation_url=link,
                )
            )
        ALERT_DELIVERIES_CLAIMED.inc(len(items))
    depth, oldest_due = await repository.backlog(now)
    waited = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else None
    return ClaimedDeliveries(items=items, backlog=OutboxBacklog(depth=depth, oldest_due_seconds=waited))


async def _reveal(
    session: AsyncSession, envelope: Envelope, found: dict[uuid.UUID, AlertChannel], *, actor: str, now: datetime
) -> dict[uuid.UUID, ChannelTarget]:
    repository = ChannelRepository(session)
    values: dict[uuid.UUID, list[ChannelSecret]] = defaultdict(list)
    for value in await repository.sending_values(found, now):
        values[value.channel_id].append(value)
    revealed: dict[uuid.UUID, ChannelTarget] = {}
    for channel in found.values():
        try:
            target = channels.reveal(envelope, channel, values[channel.id])
        except ChannelUnreadable:
            continue
        if target.url is None and target.email is None:
            log.error("channel_target_missing", channel_id=str(channel.id), workspace_id=str(channel.workspace_id))
            continue
        revealed[channel.id] = target
    audit = [
        {"workspace_id": t.workspace_id, "channel_id": t.id, "action": "revealed", "actor": actor, "at": now}
        for t in revealed.values()
    ]
    await repository.audit(audit)
    return revealed


async def report(
    session: AsyncSession,
    *,
    delivery_id: uuid.UUID,
    result: DeliveryResult,
    now: datetime,
    schedule: Sequence[float] = BACKOFF_SECONDS,
    rng: random.Random = _JITTER,
) -> DeliveryState:
    """Record one attempt's outcome (the log's row), move the delivery on, and keep the channel's failure run:
    a 410 disables the channel at once, and so does a run of failures over `FAILING_FOR` with at least
    `FAILURES_IN_A_ROW` attempts. Idempotent for a delivery no longer leased and pending."""
    repository = DeliveryRepository(session)
    channel_id = await repository.channel_of(delivery_id)
    channel = await ChannelRepository(session).get(None, channel_id, for_update=True) if channel_id else None
    delivery = await repository.get(delivery_id, for_update=True) if channel else None
    if channel is None or delivery is None:
        raise DeliveryNotFound()
    if delivery.status != PENDING or delivery.lease_until is None:
        ALERT_DELIVERIES_REPORTED.labels("stale").inc()
        return _state(delivery, channel)
    attempt = delivery.attempts + 1
    error = result.error[:ERROR_MAX] if result.error else None
    delivery.attempts, delivery.lease_until = attempt, None
    delivery.last_status_code, delivery.last_error = result.status_code, error
    disable: tuple[str, str] | None = None
    if result.outcome == "delivered":
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, now, None
        channel.failing_since, channel.consecutive_failures = None, 0
        outcome = "delivered"
    else:
        channel.consecutive_failures += 1
        channel.failing_since = channel.failing_since or now
        if result.outcome == "gone":
            disable = ("gone", GONE_REASON)
        elif now - channel.failing_since >= FAILING_FOR and channel.consecutive_failures >= FAILURES_IN_A_ROW:
            disable = ("failing", _failing_reason())
        delay = None if disable else retry_delay(attempt, result.retry_after_seconds, rng, schedule)
        if delay is None:
            delivery.status, delivery.next_attempt_at = "failed", None
            outcome = "failed"
        else:
            delivery.next_attempt_at = now + delay
            outcome = "retrying"
    await repository.add_attempt(
        {
            "workspace_id": delivery.workspace_id,
            "delivery_id": delivery.id,
            "channel_id": channel.id,
            "event_id": delivery.event_id,
            "attempt": attempt,
            "at": now,
            "status_code": result.status_code,
            "error": error,
            "next_attempt_at": delivery.next_attempt_at,
        }
    )
    if disable is not None and channel.disabled_at is None:
        cause, reason = disable
        await channels.disable_channel(
            session, channel, kind=cause, reason=reason, actor="worker", now=now, notify=True
        )
    await session.flush()
    ALERT_DELIVERIES_REPORTED.labels(outcome).inc()
    log.info("alert_delivery_reported", delivery_id=str(delivery.id), outcome=outcome, attempt=attempt)
    return _state(delivery, channel)


def _state(delivery: AlertDelivery, channel: AlertChannel) -> DeliveryState:
    return DeliveryState.model_validate(
        {
            "id": delivery.id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at,
            "channel_disabled": channel.disabled_at is not None,
        }
    )


async def delivery_log(
    session: AsyncSession, *, workspace_id: uuid.UUID, channel_id: uuid.UUID, paging: Pagination
) -> tuple[list[DeliveryAttemptView], int]:
    """The channel's attempts, newest first."""
    await channels.get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    rows, total = await DeliveryRepository(session).log_page(
        workspace_id, channel_id, offset=paging.offset, limit=paging.per_page
    )
    items = [DeliveryAttemptView.model_validate({**row._mapping, "id": row.delivery_id}) for row in rows]
    return items, total


async def retry(
    session: AsyncSession,
    limit: ChannelTestLimit,
    *,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    delivery_id: uuid.UUID,
    now: datetime,
) -> RetryQueued:
    """Make a failed or waiting delivery due now, with the same event id: the next attempt continues its
    schedule, so a retry of a spent one that fails again is failed at once. A delivered one is a 409 (it
    would send the receiver the event again); each retry counts in the channel's and the workspace's limits
    of sends on demand, as a test does."""
    channel = await channels.get_channel(session, workspace_id=workspace_id, channel_id=channel_id, for_update=True)
    delivery = await DeliveryRepository(session).get(
        delivery_id, workspace_id=workspace_id, channel_id=channel_id, for_update=True
    )
    if delivery is None:
        raise DeliveryNotFound()
    if channel.disabled_at is not None:
        raise ChannelDisabled()
    if confirmation.unconfirmed(channel):
        raise EmailNotConfirmed()
    if delivery.status == DELIVERED:
        raise DeliveryDelivered()
    if delivery.status == PENDING and delivery.lease_until is not None and delivery.lease_until > now:
        raise DeliveryInFlight()
    await limit.spend(workspace_id, channel.id)
    delivery.status, delivery.next_attempt_at, delivery.lease_until, delivery.delivered_at = PENDING, now, None, None
    await session.flush()
    log.info("alert_delivery_retry", delivery_id=str(delivery.id), channel_id=str(channel_id))
    return RetryQueued(id=delivery.id, event_id=delivery.event_id, next_attempt_at=now)
