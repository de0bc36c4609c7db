"""usage's alert routes, as the worker calls them (scope `alerts:deliver`, audience `owr-usage`).

`POST /internal/deliveries/claim` leases due deliveries with their channels' revealed targets,
`POST /internal/deliveries/{id}/result` reports one attempt, `POST /internal/digests` writes the weekly or
monthly digests, `POST /internal/price-drift` evaluates the `price.drift` rule. The token asks for `alerts:deliver` alone, apart from the sync's usage token: a deployment
whose auth does not grant it yet loses its alerts (a 403 on these calls, logged), never its syncs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from owr_shared.wire.alerts import (
    ClaimedDelivery,
    DeliveryClaim,
    DeliveryResult,
    DeliveryState,
    DigestKind,
    DigestRequest,
    EventsRaised,
    OutboxBacklog,
    PriceDriftRequest,
)
from owr_worker.internal import USAGE_AUDIENCE, _InternalClient

ALERTS_SCOPE = "alerts:deliver"


@dataclass(slots=True)
class Claim:
    """One claim's answer: the deliveries this worker now holds, the ids of those it cannot read (a newer usage's
    event type, say: reported as failed rather than left to be claimed again at every lease), and the backlog."""

    deliveries: list[ClaimedDelivery]
    backlog: OutboxBacklog
    unreadable: list[uuid.UUID] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.deliveries) + len(self.unreadable)


def _claimed_items(body: Any) -> tuple[list[ClaimedDelivery], list[uuid.UUID]]:
    """Each item on its own: one unreadable delivery must not hold up the batch."""
    items = body.get("items", []) if isinstance(body, dict) else []
    readable: list[ClaimedDelivery] = []
    unreadable: list[uuid.UUID] = []
    for item in items if isinstance(items, list) else []:
        try:
            readable.append(ClaimedDelivery.model_validate(item))
        except ValidationError:
            try:
                unreadable.append(uuid.UUID(str(item.get("id")) if isinstance(item, dict) else ""))
            except ValueError:
                continue  # not even an id: its lease lapses, and usage sees it claimed again
    return readable, unreadable


class AlertsClient(_InternalClient):
    service = "usage"
    audience = USAGE_AUDIENCE
    scope = ALERTS_SCOPE

    async def claim(self, *, limit: int, lease_seconds: int) -> Claim:
        """Lease up to `limit` due deliveries for `lease_seconds`."""
        request = DeliveryClaim(limit=limit, lease_seconds=lease_seconds)
        _, body = await self._call("POST", "/internal/deliveries/claim", body=request, expect=(200,))
        deliveries, unreadable = _claimed_items(body)
        backlog = self._answer(OutboxBacklog, body.get("backlog") if isinstance(body, dict) else None, "claim")
        return Claim(deliveries, backlog, unreadable)

    async def report(self, delivery_id: uuid.UUID, result: DeliveryResult) -> DeliveryState | None:
        """Record one attempt; the delivery's state after it, or None when usage no longer holds the delivery (its
        channel was deleted: 404) or no longer takes this attempt (409)."""
        status, body = await self._call(
            "POST", f"/internal/deliveries/{delivery_id}/result", body=result, expect=(200,), tolerate=(404, 409)
        )
        if status != 200:
            return None
        return self._answer(DeliveryState, body, "delivery result")

    async def raise_digests(self, kind: DigestKind, at: datetime) -> EventsRaised:
        """Write the `kind` digest of the period ended at or before `at` for every workspace that takes it (a
        repeat writes nothing)."""
        request = DigestRequest(kind=kind, at=at)
        _, body = await self._call("POST", "/internal/digests", body=request, expect=(200, 201))
        return self._answer(EventsRaised, body, "digests")

    async def raise_price_drift(self, at: datetime) -> EventsRaised:
        """Evaluate `price.drift` for the week settled at `at` in every workspace (a repeat writes nothing)."""
        request = PriceDriftRequest(at=at)
        _, body = await self._call("POST", "/internal/price-drift", body=request, expect=(200,))
        return self._answer(EventsRaised, body, "price drift")
