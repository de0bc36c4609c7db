"""The channels pages: each channel's state and events in words, the delivery log's rows (which may be retried),
and the forms read into the API's bodies (DESIGN §11)."""

from __future__ import annotations

from typing import Any

from owr_web.alerts.service import EVENTS, event_label
from owr_web.api.client import Api
from owr_web.channels.schemas import ChannelEditForm, ChannelForm
from owr_web.views.format import utc

PER_PAGE = 50
LOG_PER_PAGE = 50
TYPES = {
    "webhook": "Webhook, signed (Standard Webhooks)",
    "slack": "Slack incoming webhook",
    "discord": "Discord webhook",
    "email": "Email",
}
# Where each type sends: a URL for all but email.
URL_TYPES = ("webhook", "slack", "discord")
API_FIELDS = {"type": "type", "name": "name", "url": "url", "email": "email", "events": "events"}


def is_enabled(channel: dict[str, Any]) -> bool:
    if "enabled" in channel:
        return bool(channel["enabled"])
    return channel.get("disabled_at") is None


def state(channel: dict[str, Any]) -> str:
    """`Enabled`, or `Disabled: the receiver answered 410 (since 2026-12-05 14:03 UTC)`."""
    if is_enabled(channel):
        return "Enabled"
    reason = channel.get("disabled_reason")
    since = f" (since {utc(channel['disabled_at'])})" if channel.get("disabled_at") else ""
    return f"Disabled: {reason}{since}" if reason else f"Disabled{since}"


def events_label(events: list[str] | None) -> str:
    if not events:
        return "Every event"
    return ", ".join(event_label(e) for e in events)


def view(channel: dict[str, Any]) -> dict[str, Any]:
    return {
        **channel,
        "target_hint": channel.get("target_hint"),
        "events": channel.get("events"),
        "type_label": TYPES.get(str(channel.get("type")), str(channel.get("type"))),
        "enabled": is_enabled(channel),
        "state": state(channel),
        "events_label": events_label(channel.get("events")),
        # An email channel whose address has not used its confirmation link gets nothing else (double opt-in).
        "confirmation": channel.get("confirmation"),
        "awaiting_confirmation": channel.get("confirmation") == "pending",
    }


async def listing(api: Api, page: int = 1) -> dict[str, Any]:
    channels = await api.channels(page=page, per_page=PER_PAGE)
    return {
        "rows": [view(c) for c in channels["items"]],
        "total": int(channels["total"]),
        "page": page,
        "pages": max(1, -(-int(channels["total"]) // PER_PAGE)),
    }


def _delivery_id(item: dict[str, Any]) -> str:
    return str(item.get("delivery_id") or item.get("id") or "")


def outcome(item: dict[str, Any]) -> str:
    """What one attempt came to: `200`, `HTTP 500`, or the error (a timeout, a refused address)."""
    code = item.get("status_code")
    if code is not None and 200 <= int(code) < 300:
        return f"{code} delivered"
    if code is not None:
        return f"HTTP {code}" + (f": {item['error']}" if item.get("error") else "")
    return str(item.get("error") or "no answer yet")


def failed_for_good(item: dict[str, Any]) -> bool:
    """A delivery with no retry left: its `status` says `failed`, or (without one) it has neither succeeded nor
    a next attempt."""
    if item.get("status"):
        return bool(item["status"] == "failed")
    code = item.get("status_code")
    succeeded = code is not None and 200 <= int(code) < 300
    attempted = code is not None or bool(item.get("error"))
    return attempted and not succeeded and not item.get("next_attempt_at")


def log_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The delivery log (newest first, as the API gives it): each attempt in words; the Retry button goes on the
    newest row of each delivery that failed for good."""
    seen: set[str] = set()
    rows = []
    for item in items:
        delivery = _delivery_id(item)
        newest = delivery not in seen
        seen.add(delivery)
        nxt = item.get("next_attempt_at")
        rows.append(
            {
                **item,
                "at": item.get("at"),
                "attempt": item.get("attempt"),
                "event_type": item.get("event_type"),
                "delivery_id": delivery,
                "label": event_label(str(item.get("event_type"))),
                "outcome": outcome(item),
                "next": utc(nxt) if nxt else "",
                "retry": bool(delivery) and newest and failed_for_good(item),
            }
        )
    return rows


async def detail(api: Api, channel_id: str, page: int = 1) -> dict[str, Any]:
    """One channel and a page of its delivery log (the channel first: another workspace's is a 404 page)."""
    channel = await api.channel(channel_id)
    log = await api.deliveries(channel_id, page=page, per_page=LOG_PER_PAGE)
    return {
        "channel": view(channel),
        "log": log_rows(log["items"]),
        "total": int(log["total"]),
        "page": page,
        "pages": max(1, -(-int(log["total"]) // LOG_PER_PAGE)),
    }


def known_events(chosen: list[str]) -> list[str]:
    """The ticked event types this page knows, in the API's order (an unknown one is dropped, not sent)."""
    return [e for e in EVENTS if e in set(chosen)]


def body_of(form: ChannelForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's body and the form's own refusals. No event ticked: every event (the field is left out)."""
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"type": form.type, "name": form.name.strip()}
    if form.type in URL_TYPES:
        body["url"] = form.url.strip()
        if not body["url"]:
            errors["url"] = "Give the URL alerts are posted to."
    elif form.type == "email":
        body["email"] = form.email.strip()
        if not body["email"]:
            errors["email"] = "Give the address alerts are mailed to."
    events = known_events(form.events)
    if events:
        body["events"] = events
    return body, errors


def edit_body_of(form: ChannelEditForm) -> dict[str, Any]:
    """A `PATCH`: the name, and the events (null again for every event)."""
    return {"name": form.name.strip(), "events": known_events(form.events) or None}
