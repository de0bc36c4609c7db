"""Delivery errors."""

from __future__ import annotations

from owr_shared.errors import Conflict, NotFound


class DeliveryNotFound(NotFound):
    """No such delivery (of this channel, in this workspace); also when its channel was deleted."""

    slug, title = "delivery-not-found", "Delivery Not Found"
    default_detail = "No delivery with this id exists here."


class DeliveryInFlight(Conflict):
    slug, title = "delivery-in-flight", "Delivery In Flight"
    default_detail = "The worker is sending this delivery right now; retry once its attempt is in the log."
