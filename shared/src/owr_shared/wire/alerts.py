"""The worker <-> usage internal bodies for alerts: claiming due deliveries, reporting each attempt, key
status for the key rules, and the digests' schedule.

usage serves and parses them; the worker builds and parses the very same models. A claimed delivery
carries its channel's revealed target and signing secrets: they exist only in this answer (audited by
usage) and never in a repr.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, Field

from owr_shared.schemas import RequestSchema, StorableText
from owr_shared.wire.fields import AwareObservedAt

ChannelType = Literal["webhook", "slack", "discord", "email"]
EventType = Literal[
    "budget.threshold_crossed",
    "budget.exceeded",
    "budget.forecast_exceeded",
    "budget.recovered",
    "key.invalid",
    "key.expiring",
    "key.limit_threshold_crossed",
    "key.anomaly",
    "key.disabled",
    "account.balance_low",
    "account.runway_low",
    "sync.failing",
    "sync.recovered",
    "report.weekly",
    "report.monthly",
    "channel.disabled",
    # An email channel's confirmation link (double opt-in): sent to that channel alone, never fanned out.
    "channel.confirmation",
    "test",
    "price.drift",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


def _storable(value: str) -> str:
    # An error text is reported, never refused: what PostgreSQL cannot store (NUL, a lone surrogate) is replaced.
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# Free text from the outside (a receiver's error, an upstream message), kept storable whatever it holds.
ReportedText = Annotated[str, AfterValidator(_storable)]
CLAIM_MAX = 200
# The worker's delivery run: its poll and usage's nudge after a commit queue it under this one id, so a run queued
# or running already absorbs both.
DELIVER_ALERTS_JOB = "deliver_alerts"
DELIVER_ALERTS_JOB_ID = DELIVER_ALERTS_JOB
ERROR_MAX = 300
KEY_STATUS_BATCH_MAX = 500


class DeliveryClaim(RequestSchema):
    """Lease up to `limit` due deliveries for `lease_seconds`; a worker killed mid-send loses its lease and the
    delivery is claimed again (at least once, with the same event id)."""

    limit: int = Field(default=50, ge=1, le=CLAIM_MAX)
    lease_seconds: int = Field(default=60, ge=10, le=600)


class ClaimedEvent(BaseModel):
    """What the receiver gets: the event id is the webhook's `webhook-id`."""

    id: uuid.UUID
    type: EventType
    occurred_at: datetime
    data: dict[str, Any]


class ChannelTarget(BaseModel):
    """A channel as the worker needs it to send: its revealed target and, for webhooks, the secrets that sign
    (newest first; two during a rotation's overlap)."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    type: ChannelType
    name: str
    url: str | None = Field(default=None, repr=False)
    email: str | None = Field(default=None, repr=False)
    secrets: list[str] = Field(default_factory=list, repr=False)


class ClaimedDelivery(BaseModel):
    id: uuid.UUID
    attempt: int = Field(description="this attempt's number, from 1")
    event: ClaimedEvent
    channel: ChannelTarget
    # A `channel.confirmation` email's link, with its one-time token minted for this attempt: only in this answer
    # and in the email, never in the event's data or a repr.
    confirmation_url: str | None = Field(default=None, repr=False)


class OutboxBacklog(BaseModel):
    """Pending deliveries, and how long the oldest due one has waited (None when none is due)."""

    depth: int
    oldest_due_seconds: float | None


class ClaimedDeliveries(BaseModel):
    items: list[ClaimedDelivery]
    backlog: OutboxBacklog


DeliveryOutcomeKind = Literal["delivered", "failed", "gone"]


class DeliveryResult(RequestSchema):
    """One attempt's outcome: `delivered` (a 2xx), `failed` (any other status, a timeout, a refused address),
    `gone` (a 410: the receiver asks to stop; the channel is disabled). `retry_after_seconds` is the
    receiver's `Retry-After`, honoured when it asks for longer than the backoff."""

    outcome: DeliveryOutcomeKind
    status_code: int | None = Field(default=None, ge=100, le=599)
    # Longer input is accepted and cut, so a verbose error never fails the report itself.
    error: ReportedText | None = Field(default=None, max_length=4000)
    retry_after_seconds: float | None = Field(default=None, ge=0, le=7 * 86400)


class DeliveryState(BaseModel):
    """The delivery after the report: `pending` with its next attempt, `delivered`, or `failed` for good."""

    id: uuid.UUID
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    channel_disabled: bool


KeySyncStatus = Literal["valid", "invalid", "error"]


class KeyStatusItem(RequestSchema):
    """One sync's outcome for the key rules (invalid, expiring, near its limit, sync failing and recovered)."""

    key_id: uuid.UUID
    workspace_id: uuid.UUID
    name: StorableText | None = Field(default=None, max_length=100)
    status: KeySyncStatus
    observed_at: AwareObservedAt
    error: ReportedText | None = Field(default=None, max_length=4000)


class KeyStatusBatch(RequestSchema):
    items: Annotated[list[KeyStatusItem], Field(min_length=1, max_length=KEY_STATUS_BATCH_MAX)]


class EventsRaised(BaseModel):
    """How many events a report or an evaluation wrote to the outbox (repeats of an event are not counted)."""

    raised: int


DigestKind = Literal["weekly", "monthly"]


class DigestRequest(RequestSchema):
    """Write the digest of the period that ended at or before `at` for every workspace with a channel that
    takes it; a repeat for the same period writes nothing."""

    kind: DigestKind
    at: AwareObservedAt | None = None


class PriceDriftRequest(RequestSchema):
    """Evaluate `price.drift` for the last UTC week settled at `at` (default now) in every workspace; an
    event goes out once per (workspace, model, provider, week), so a repeat writes nothing."""

    at: AwareObservedAt | None = None
