"""Delivery errors."""

from __future__ import annotations

from owr_shared.errors import Conflict, NotFound


class DeliveryNotFound(NotFound):
    """No such delivery (of this channel, in this workspace); also when its channel was deleted."""

    slug, title = "delivery-not-found", "Delivery Not Found"
    default_detail = "No delivery with this id exists here."


class DeliveryDelivered(Conflict):
    """A retry of a delivery the receiver already took: nothing is due again (a test sends a new event)."""

    slug, title = "delivery-delivered", "Delivery Already Delivered"
    default_detail = (
        "This delivery already succeeded, so there is nothing to retry; send the channel a test event to check it."
    )


class DeliveryInFlight(Conflict):
    slug, title = "delivery-in-flight", "Delivery In Flight"
    default_detail = "The worker is sending this delivery right now; retry once its attempt is in the log."
