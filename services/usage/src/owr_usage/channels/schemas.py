"""Channel bodies and views. A view never carries the URL, the address or a secret; a refusal never echoes them."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints, model_validator

from owr_shared.schemas import RequestSchema
from owr_shared.wire.alerts import EVENT_TYPES, ChannelType, EventType
from owr_usage.channels.targets import EMAIL_MAX, URL_MAX, canonical_email, url_shape

NAME_MAX = 100
URL_TYPES = ("webhook", "slack", "discord")


def _check_name(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _distinct(value: list[EventType]) -> list[EventType]:
    if "channel.confirmation" in value:
        # An unconfirmed email channel's own confirmation: never chosen, never fanned out.
        raise ValueError("channel.confirmation is sent to an unconfirmed email channel alone; it cannot be chosen")
    return sorted(set(value))


ChannelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX), AfterValidator(_check_name)
]
ChannelUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX),
    AfterValidator(url_shape),
    Field(json_schema_extra={"writeOnly": True}),
]
ChannelEmail = Annotated[
    str,
    StringConstraints(min_length=3, max_length=EMAIL_MAX),
    AfterValidator(canonical_email),
    Field(json_schema_extra={"writeOnly": True}),
]
EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES), description="omit (or null) for every event type"),
    AfterValidator(_distinct),
]


class CreateChannelRequest(RequestSchema):
    """`url` for webhook, Slack and Discord channels; `email` for email channels."""

    type: ChannelType
    name: ChannelName
    url: ChannelUrl | None = Field(default=None, repr=False)
    email: ChannelEmail | None = Field(default=None, repr=False)
    events: EventTypes | None = None

    @model_validator(mode="after")
    def _target_matches_type(self) -> Self:
        if self.type in URL_TYPES:
            if self.url is None or self.email is not None:
                raise ValueError(f"a {self.type} channel takes a url and no email")
        elif self.email is None or self.url is not None:
            raise ValueError("an email channel takes an email and no url")
        return self


class UpdateChannelRequest(RequestSchema):
    """Fields left out stay as they are; `events: null` takes every event type again. `url` or `email` (the
    one the channel's type takes) replaces the target; `enabled: true` re-enables a disabled channel."""

    name: ChannelName | None = None
    url: ChannelUrl | None = Field(default=None, repr=False)
    email: ChannelEmail | None = Field(default=None, repr=False)
    events: EventTypes | None = None
    enabled: StrictBool | None = None


class ChannelView(BaseModel):
    """A channel as its workspace sees it: `target_hint` is the URL's scheme and host, or the masked address."""

    id: uuid.UUID
    type: ChannelType
    name: str
    target_hint: str
    events: list[EventType] | None = Field(description="null: every event type")
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="the first failed attempt of the current run of failures")
    consecutive_failures: int
    confirmation: Literal["pending", "confirmed"] | None = Field(
        description="email channels: `pending` until the address follows the link in its confirmation email (it "
        "gets no other mail until then), then `confirmed`; null for the other types"
    )
    created_at: datetime
    updated_at: datetime


class ChannelCreated(ChannelView):
    secret: str | None = Field(
        description="webhook channels: the signing secret (`whsec_...`), shown this once and never again"
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="the new signing secret, shown this once")
    previous_expires_at: datetime = Field(description="the old secret signs beside the new one until then")


class ChannelTestQueued(BaseModel):
    """A `test` event for this channel alone is in the outbox; the worker sends it shortly."""

    event_id: uuid.UUID


class DeliveryAttemptView(BaseModel):
    """One attempt of a delivery (`id`, which `.../deliveries/{id}/retry` takes) to this channel."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: EventType
    status: Literal["pending", "delivered", "failed", "cancelled"] = Field(description="the delivery's status now")
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None = Field(description="when this attempt failed: the next retry, if any")


class RetryQueued(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    next_attempt_at: datetime


class ConfirmationQueued(BaseModel):
    """A new confirmation email is in the outbox; the links of earlier ones stop working when it is sent."""

    event_id: uuid.UUID


class ConfirmChannelRequest(RequestSchema):
    token: str = Field(min_length=1, max_length=200, repr=False)


class ChannelConfirmed(BaseModel):
    """The address confirmed: the channel (its workspace's name for it) now gets its alerts."""

    channel_id: uuid.UUID
    name: str
    target_hint: str
