"""`/channels` and `/channels/{id}`: the secret shown once (gone on reload, never logged), the target never shown
back, the delivery log with Retry on failed deliveries, and each action's call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.logs import captured_json_logs
from tests.web.conftest import Browser, text

CHANNEL_ID = "7a1e2f3c-2222-4a8b-8c9d-1e2f3a4b5c01"
SECRET = "whsec_" + "c2VjcmV0IHNpZ25pbmcga2V5IGZvciB0ZXN0cw=="
URL = "https://hooks.example/T000/B000/very-secret-path"


def channel(**changes: Any) -> dict[str, Any]:
    return {
        "id": CHANNEL_ID,
        "type": "webhook",
        "name": "ops hook",
        "target_hint": "https://hooks.example",
        "events": ["budget.exceeded", "key.invalid"],
        "enabled": True,
        "disabled_at": None,
        "disabled_reason": None,
        "created_at": "2026-12-01T09:00:00Z",
        **changes,
    }


def attempt(n: int, delivery: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"{n}",
        "delivery_id": delivery,
        "event_id": "e0c1d2e3-4444-4f5a-8b9c-0d1e2f3a4b01",
        "event_type": "budget.exceeded",
        "attempt": n,
        "at": "2026-12-05T14:03:00Z",
        "status_code": None,
        "error": None,
        "next_attempt_at": None,
        **changes,
    }


def show(web: Browser, log: list[dict[str, Any]] | None = None, **changes: Any) -> None:
    web.gateway.answer("GET", f"/api/v1/channels/{CHANNEL_ID}", channel(**changes))
    web.gateway.page(f"/api/v1/channels/{CHANNEL_ID}/deliveries", log or [])


async def test_a_webhooks_secret_is_shown_once_and_never_logged(
    web: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    with captured_json_logs(capsys, "web") as logs:
        await _create_and_show(web)
        written = logs.getvalue()
    assert "/api/v1/channels" in written  # the capture saw the calls (DEBUG, httpx included)
    assert SECRET not in written
    assert URL not in written


async def _create_and_show(web: Browser) -> None:
    web.gateway.answer("POST", "/api/v1/channels", {**channel(), "secret": SECRET}, status=201)
    show(web)
    form = {
        "type": "webhook",
        "name": "ops hook",
        "url": URL,
        "email": "",
        "events": ["budget.exceeded", "key.invalid", "no.such"],
    }
    r = await web.post("/channels", form)
    assert r.status_code == 303
    assert r.headers["location"] == f"/channels/{CHANNEL_ID}?done=created"
    (call,) = web.gateway.sent("POST", "/api/v1/channels")
    # Only the event types the API knows are sent, in its order; the URL goes to the API, never back.
    assert call.body == {
        "type": "webhook",
        "name": "ops hook",
        "url": URL,
        "events": ["budget.exceeded", "key.invalid"],
    }
    assert SECRET not in r.text
    page = await web.get(r.headers["location"])
    assert f'value="{SECRET}"' in page.text
    assert "Copy it now" in page.text
    assert "Channel created." in page.text
    assert URL not in page.text
    again = await web.get(f"/channels/{CHANNEL_ID}")
    assert SECRET not in again.text


async def test_a_refused_channel_comes_back_without_its_url(web: Browser) -> None:
    web.gateway.page("/api/v1/channels", [])
    problem = {
        "title": "Validation Error",
        "status": 422,
        "detail": "The request is not valid.",
        "errors": [{"loc": ["body", "url"], "msg": "only https to a public address", "type": "value_error"}],
    }
    web.gateway.answer("POST", "/api/v1/channels", problem, status=422)
    r = await web.post("/channels", {"type": "slack", "name": "alerts", "url": URL})
    assert r.status_code == 422
    assert '<p id="url-error" class="field-error">only https to a public address</p>' in r.text
    assert URL not in r.text
    assert 'value="alerts"' in r.text
    r = await web.post("/channels", {"type": "email", "name": "me"})
    assert "Give the address alerts are mailed to." in r.text
    assert len(web.gateway.sent("POST", "/api/v1/channels")) == 1


async def test_the_list_says_each_channels_state_in_words(web: Browser) -> None:
    off = channel(
        id="7a1e2f3c-2222-4a8b-8c9d-1e2f3a4b5c02",
        name="old hook",
        events=None,
        enabled=False,
        disabled_at="2026-12-04T10:00:00Z",
        disabled_reason="the receiver answered 410 Gone",
    )
    web.gateway.page("/api/v1/channels", [channel(), off])
    said = text((await web.get("/channels")).text)
    assert (
        "ops hook Webhook, signed (Standard Webhooks) https://hooks.example Events: Budget exceeded, Key refused by OpenRouter Enabled"
        in said
    )
    assert "Events: Every event Disabled: the receiver answered 410 Gone (since 2026-12-04 10:00 UTC)" in said


async def test_the_delivery_log_offers_retry_on_failed_deliveries_only(web: Browser) -> None:
    failed, pending, delivered = (
        "d0000000-0000-4000-8000-000000000001",
        "d0000000-0000-4000-8000-000000000002",
        "d0000000-0000-4000-8000-000000000003",
    )
    soon = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    log = [
        attempt(3, failed, status_code=500, status="failed"),
        attempt(2, failed, status_code=500, next_attempt_at=soon, status="failed"),
        attempt(1, pending, error="connection refused", next_attempt_at=soon),
        attempt(1, delivered, status_code=204, event_type="test"),
    ]
    show(web, log)
    r = await web.get(f"/channels/{CHANNEL_ID}")
    assert r.status_code == 200
    retries = r.text.count("/retry")
    assert retries == 1
    assert f"/channels/{CHANNEL_ID}/deliveries/{failed}/retry" in r.text
    said = text(r.text)
    assert "HTTP 500" in said
    assert "connection refused" in said
    assert "204 delivered" in said
    assert f"connection refused Next retry: {datetime.fromisoformat(soon):%Y-%m-%d %H:%M} UTC" in said  # the next retry
    web.gateway.answer(
        "POST", f"/api/v1/channels/{CHANNEL_ID}/deliveries/{failed}/retry", {"status": "pending"}, status=202
    )
    r = await web.post(f"/channels/{CHANNEL_ID}/deliveries/{failed}/retry")
    assert r.headers["location"] == f"/channels/{CHANNEL_ID}?done=retried"
    assert len(web.gateway.sent("POST", f"/api/v1/channels/{CHANNEL_ID}/deliveries/{failed}/retry")) == 1


async def test_each_action_calls_the_api_and_says_what_happened(web: Browser) -> None:
    show(web)
    web.gateway.answer("POST", f"/api/v1/channels/{CHANNEL_ID}/test", {"event_id": "x"}, status=202)
    web.gateway.answer("PATCH", f"/api/v1/channels/{CHANNEL_ID}", channel(enabled=False))
    web.gateway.answer("POST", f"/api/v1/channels/{CHANNEL_ID}/rotate-secret", {**channel(), "secret": SECRET + "2"})
    r = await web.post(f"/channels/{CHANNEL_ID}/test")
    assert r.headers["location"].endswith("?done=test")
    r = await web.post(f"/channels/{CHANNEL_ID}/enabled", {"enabled": "false"})
    assert r.headers["location"].endswith("?done=disabled")
    assert web.gateway.sent("PATCH", f"/api/v1/channels/{CHANNEL_ID}")[-1].body == {"enabled": False}
    r = await web.post(f"/channels/{CHANNEL_ID}/edit", {"name": " renamed ", "events": []})
    assert web.gateway.sent("PATCH", f"/api/v1/channels/{CHANNEL_ID}")[-1].body == {"name": "renamed", "events": None}
    r = await web.post(f"/channels/{CHANNEL_ID}/rotate-secret")
    page = await web.get(r.headers["location"])
    assert f'value="{SECRET}2"' in page.text
    assert "the old one keeps signing alongside it for 24 hours" in page.text


async def test_a_refused_action_is_said_on_the_channels_page(web: Browser) -> None:
    show(web, enabled=False)
    problem = {"title": "Conflict", "status": 409, "detail": "This channel is disabled: enable it to send a test."}
    web.gateway.answer("POST", f"/api/v1/channels/{CHANNEL_ID}/test", problem, status=409)
    r = await web.post(f"/channels/{CHANNEL_ID}/test")
    assert r.status_code == 409
    assert "This channel is disabled: enable it to send a test." in r.text
    assert ">Enable<" in r.text


async def test_deleting_a_channel_asks_first(web: Browser) -> None:
    show(web)
    web.gateway.answer("DELETE", f"/api/v1/channels/{CHANNEL_ID}", None, status=204)
    assert "Delete the channel “ops hook”?" in (await web.get(f"/channels/{CHANNEL_ID}/delete")).text
    r = await web.post(f"/channels/{CHANNEL_ID}/delete")
    assert r.headers["location"] == "/channels?done=deleted"
    assert len(web.gateway.sent("DELETE", f"/api/v1/channels/{CHANNEL_ID}")) == 1


async def test_a_viewer_sees_the_log_but_no_action(web: Browser) -> None:
    await web.sign_in("viewer")
    show(web, [attempt(3, "d0000000-0000-4000-8000-000000000001", status_code=500, status="failed")])
    r = await web.get(f"/channels/{CHANNEL_ID}")
    assert r.status_code == 200
    assert "HTTP 500" in r.text
    assert 'method="post"' not in r.text.split("</header>", 1)[1]  # no form past the header's sign-out
    web.gateway.page("/api/v1/channels", [channel()])
    r = await web.get("/channels")
    assert 'action="/channels"' not in r.text


async def test_an_unverified_admin_is_told_to_verify_instead_of_offered_what_would_fail(web: Browser) -> None:
    """The API refuses channels to an unverified address (403 `email-not-verified`): the pages say so and offer
    neither the add form nor the test, enable and retry buttons; disabling stays."""
    await web.sign_in("admin", email_verified=False)
    web.gateway.page("/api/v1/channels", [channel()])
    listing = await web.get("/channels")
    assert listing.status_code == 200
    assert "Verify your email address to receive alerts" in text(listing.text)
    assert 'action="/channels"' not in listing.text
    failed = "d0000000-0000-4000-8000-000000000001"
    show(web, [attempt(1, failed, status_code=500, status="failed")], enabled=False)
    page = await web.get(f"/channels/{CHANNEL_ID}")
    assert "Verify your email address to receive alerts" in text(page.text)
    assert "or which events it gets, or retry a delivery" in text(page.text)
    assert f'action="/channels/{CHANNEL_ID}/test"' not in page.text
    assert f'action="/channels/{CHANNEL_ID}/enabled"' not in page.text
    assert "/retry" not in page.text
    show(web)
    assert f'action="/channels/{CHANNEL_ID}/enabled"' in (await web.get(f"/channels/{CHANNEL_ID}")).text

    await web.sign_in("admin", email_verified=True)
    show(web, [attempt(1, failed, status_code=500, status="failed")])
    assert f"/channels/{CHANNEL_ID}/deliveries/{failed}/retry" in (await web.get(f"/channels/{CHANNEL_ID}")).text
    listing = await web.get("/channels")
    assert "Verify your email address to receive alerts" not in text(listing.text)
    assert 'action="/channels"' in listing.text


async def test_an_unconfirmed_email_channel_says_why_and_offers_the_confirmation_again(web: Browser) -> None:
    mailbox: dict[str, Any] = {"type": "email", "target_hint": "o***@example.com", "confirmation": "pending"}
    show(web, [attempt(1, "d-1", event_type="channel.confirmation", status="delivered", status_code=250)], **mailbox)
    page = await web.get(f"/channels/{CHANNEL_ID}")
    assert 'data-confirmation="pending"' in page.text
    assert "gets no alerts, tests or reports until its recipient opens the link" in text(page.text)
    assert f'action="/channels/{CHANNEL_ID}/test"' not in page.text
    assert "Address confirmation" in text(page.text)
    web.gateway.answer("POST", f"/api/v1/channels/{CHANNEL_ID}/resend-confirmation", {"event_id": "x"}, status=202)
    r = await web.post(f"/channels/{CHANNEL_ID}/resend-confirmation")
    assert (r.status_code, r.headers["location"]) == (303, f"/channels/{CHANNEL_ID}?done=confirmation")
    assert len(web.gateway.sent("POST", f"/api/v1/channels/{CHANNEL_ID}/resend-confirmation")) == 1
    show(web, **{**mailbox, "confirmation": "confirmed"})
    page = await web.get(f"/channels/{CHANNEL_ID}")
    assert 'data-confirmation="confirmed"' in page.text
    assert f'action="/channels/{CHANNEL_ID}/test"' in page.text
    assert "resend-confirmation" not in page.text


async def test_the_confirmation_link_spends_nothing_until_the_button_is_pressed(web: Browser) -> None:
    web.client.cookies.clear()  # the recipient may have no account
    token = "owrc_" + "0" * 32 + "A" * 43
    confirmed = {"channel_id": CHANNEL_ID, "name": "on call", "target_hint": "o***@example.com"}
    web.gateway.answer("POST", "/api/v1/channel-confirmations", confirmed)
    page = await web.get("/confirm-email-channel", token=token)
    assert page.status_code == 200
    assert web.gateway.sent("POST", "/api/v1/channel-confirmations") == []
    assert page.text.count(token) == 1  # in the form that sends it back, nowhere else
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    forged = await web.client.post("/confirm-email-channel", data={"token": token, "csrf_token": "forged"})
    assert forged.status_code in (400, 403)
    assert web.gateway.sent("POST", "/api/v1/channel-confirmations") == []
    pressed = await web.client.post("/confirm-email-channel", data={"token": token, "csrf_token": csrf.group(1)})
    assert pressed.status_code == 200
    assert "the channel “on call” sends its alerts to it from now on" in text(pressed.text)
    [call] = web.gateway.sent("POST", "/api/v1/channel-confirmations")
    assert call.body == {"token": token}
    web.gateway.answer("POST", "/api/v1/channel-confirmations", {"title": "Link Expired", "status": 410}, status=410)
    again = await web.client.post("/confirm-email-channel", data={"token": token, "csrf_token": csrf.group(1)})
    assert again.status_code == 410
    assert "has expired, has been used already" in text(again.text)
    assert (await web.get("/confirm-email-channel")).status_code == 400
