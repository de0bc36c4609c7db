"""Alert history views: each event with where it went."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from owr_shared.wire.alerts import EventType


class EventDeliveryView(BaseModel):
    channel_id: uuid.UUID
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int


class AlertEventView(BaseModel):
    """One event as its receivers got it: `id` is the webhook's `webhook-id`, `data` its body's `data`."""

    id: uuid.UUID
    type: EventType
    at: datetime
    data: dict[str, Any]
    deliveries: list[EventDeliveryView] = Field(description="one per channel it went to (deleted channels drop out)")
