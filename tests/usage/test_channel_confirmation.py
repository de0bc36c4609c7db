"""Double opt-in for email channels: an address gets its confirmation link and nothing else until the link is used;
the link's token is stored hashed, works once, expires, and is replaced by a newer one."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import text

from owr_usage.channels.limits import ChannelTestLimit
from tests.support.db import savepoint
from tests.support.http import assert_problem
from tests.usage.channels_kit import (
    claim,
    confirm_email,
    confirmation_token,
    create_channel,
    of,
    report,
    send_test,
    webhook,
)
from tests.usage.conftest import replaced_state

CONFIRM = "/api/v1/channel-confirmations"


def _email(address: str = "oncall@example.com") -> dict[str, Any]:
    return {"type": "email", "name": "on call", "email": address}


async def _view(client, tenant, channel_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/channels/{channel_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _confirmations(client, deliver, tenant, channel_id: str) -> list[dict[str, Any]]:
    """The channel's confirmation emails the worker claims now, each reported sent."""
    items = of(await claim(client, deliver), tenant)
    found = [i for i in items if i["channel"]["id"] == channel_id and i["event"]["type"] == "channel.confirmation"]
    for item in found:
        await report(client, deliver, item["id"], "delivered", status_code=250)
    return found


async def test_an_unconfirmed_address_gets_its_link_alone_until_the_recipient_uses_it(
    client, alice, deliver, quiet, db_connection, capsys
):
    mailbox = await create_channel(client, alice, _email())
    hook = await create_channel(client, alice, webhook())
    assert (mailbox["confirmation"], hook["confirmation"]) == ("pending", None)
    problem = assert_problem(await client.post(f"/api/v1/channels/{mailbox['id']}/test", headers=alice.headers), 409)
    assert problem["type"].endswith("/email-not-confirmed")
    await send_test(client, alice, hook["id"])
    items = {i["channel"]["id"]: i for i in of(await claim(client, deliver), alice)}
    assert set(items) == {mailbox["id"], hook["id"]}
    letter = items[mailbox["id"]]
    token = confirmation_token(letter)
    assert letter["confirmation_url"] == f"http://localhost:8000/confirm-email-channel?token={token}"
    assert token.startswith("owrc_" + uuid.UUID(alice.workspace_id).hex)
    assert len(token) == 5 + 32 + 43
    assert token not in str(letter["event"])
    # The receiver of the webhook is gone: the workspace's other channels are told, but not an unconfirmed address.
    await report(client, deliver, items[hook["id"]]["id"], "gone", status_code=410)
    await report(client, deliver, letter["id"], "delivered", status_code=250)
    async with savepoint(db_connection) as conn:
        types = await conn.scalars(
            text(
                "SELECT e.type FROM usage.alert_deliveries d JOIN usage.alert_events e ON e.id = d.event_id"
                " WHERE d.channel_id = :c ORDER BY e.type"
            ),
            {"c": mailbox["id"]},
        )
        assert list(types) == ["channel.confirmation"]
        stored = await conn.scalar(
            text("SELECT token_hash FROM usage.channel_confirmations WHERE channel_id = :c"), {"c": mailbox["id"]}
        )
        assert stored == hashlib.sha256(token.encode()).digest()
        leaks = await conn.scalar(
            text("SELECT count(*) FROM usage.alert_events WHERE data::text LIKE :t"), {"t": f"%{token[37:]}%"}
        )
        assert leaks == 0
    [attempt] = (await client.get(f"/api/v1/channels/{mailbox['id']}/deliveries", headers=alice.headers)).json()[
        "items"
    ]
    assert (attempt["event_type"], attempt["status"]) == ("channel.confirmation", "delivered")
    # The recipient needs no account, and the link works once.
    r = await client.post(CONFIRM, json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"channel_id": mailbox["id"], "name": "on call", "target_hint": mailbox["target_hint"]}
    assert r.headers["cache-control"] == "no-store"
    assert (await _view(client, alice, mailbox["id"]))["confirmation"] == "confirmed"
    problem = assert_problem(await client.post(CONFIRM, json={"token": token}), 410)
    assert problem["type"].endswith("/link-expired")
    async with savepoint(db_connection) as conn:
        actions = await conn.scalars(
            text("SELECT action FROM usage.channel_audit WHERE channel_id = :c ORDER BY id"), {"c": mailbox["id"]}
        )
        assert list(actions)[-1] == "confirmed"
    event_id = await send_test(client, alice, mailbox["id"])
    [test] = [i for i in of(await claim(client, deliver), alice) if i["channel"]["id"] == mailbox["id"]]
    assert (test["event"]["id"], test["confirmation_url"]) == (event_id, None)
    logged = capsys.readouterr()
    assert "channel_email_confirmed" in logged.out  # the capture saw usage's lines
    assert token[37:] not in logged.out + logged.err


async def test_a_newer_link_replaces_the_older_and_links_expire(client, alice, deliver, quiet, clock):
    mailbox = await create_channel(client, alice, _email())
    resend = f"/api/v1/channels/{mailbox['id']}/resend-confirmation"
    [first] = await _confirmations(client, deliver, alice, mailbox["id"])
    r = await client.post(resend, headers=alice.headers)
    assert r.status_code == 202, r.text
    [second] = await _confirmations(client, deliver, alice, mailbox["id"])
    assert second["event"]["id"] == r.json()["event_id"]
    assert_problem(await client.post(CONFIRM, json={"token": confirmation_token(first)}), 410)
    unicode_digits = "owrc_" + "\u0660" * 32 + "x" * 43  # uuid.UUID(hex=...) takes these; hashing would not
    non_ascii = "owrc_" + "0" * 32 + "\u00e9" * 43
    for malformed in (
        "abc",
        "owrc_" + "0" * 32 + "x" * 10,
        "owrc_" + "g" * 32 + "x" * 43,
        "owrx_" + "0" * 75,
        unicode_digits,
        non_ascii,
        "owrc_" + "0" * 32 + "x" * 43 + "\n",
    ):
        problem = assert_problem(await client.post(CONFIRM, json={"token": malformed}), 400)
        assert problem["type"].endswith("/invalid-link")
    clock.advance(days=7, seconds=1)
    assert_problem(await client.post(CONFIRM, json={"token": confirmation_token(second)}), 410)
    assert (await _view(client, alice, mailbox["id"]))["confirmation"] == "pending"
    assert (await client.post(resend, headers=alice.headers)).status_code == 202
    [third] = await _confirmations(client, deliver, alice, mailbox["id"])
    assert (await client.post(CONFIRM, json={"token": confirmation_token(third)})).status_code == 200
    problem = assert_problem(await client.post(resend, headers=alice.headers), 409)
    assert problem["type"].endswith("/nothing-to-confirm")
    hook = await create_channel(client, alice, webhook())
    assert_problem(await client.post(f"/api/v1/channels/{hook['id']}/resend-confirmation", headers=alice.headers), 409)


async def test_a_new_address_must_confirm_again(client, alice, deliver, quiet, db_connection):
    mailbox = await create_channel(client, alice, _email())
    await confirm_email(client, deliver, alice, mailbox["id"])
    await send_test(client, alice, mailbox["id"])  # waiting when the address changes: it never goes to either
    url = f"/api/v1/channels/{mailbox['id']}"
    assert (await client.patch(url, headers=alice.headers, json={"name": "renamed"})).json()["confirmation"] == (
        "confirmed"
    )
    changed = await client.patch(url, headers=alice.headers, json={"email": "someone.else@example.com"})
    assert changed.json()["confirmation"] == "pending"
    [item] = [i for i in of(await claim(client, deliver), alice) if i["channel"]["id"] == mailbox["id"]]
    assert (item["event"]["type"], item["channel"]["email"]) == ("channel.confirmation", "someone.else@example.com")
    async with savepoint(db_connection) as conn:
        errors = await conn.scalars(
            text(
                "SELECT d.last_error FROM usage.alert_deliveries d JOIN usage.alert_events e ON e.id = d.event_id"
                " WHERE d.channel_id = :c AND e.type = 'test'"
            ),
            {"c": mailbox["id"]},
        )
        assert list(errors) == ["address changed: the address has not confirmed it wants alerts yet"]
        # One written in the instant before the change committed: it waits for the new address's confirmation.
        await conn.execute(
            text(
                "UPDATE usage.alert_deliveries SET status = 'pending', next_attempt_at = now() - interval '1 minute'"
                " WHERE channel_id = :c AND status = 'failed'"
            ),
            {"c": mailbox["id"]},
        )
    assert_problem(await client.post(f"{url}/test", headers=alice.headers), 409)
    assert [i for i in of(await claim(client, deliver), alice) if i["channel"]["id"] == mailbox["id"]] == []
    await report(client, deliver, item["id"], "delivered", status_code=250)
    assert (await client.post(CONFIRM, json={"token": confirmation_token(item)})).status_code == 200
    [held] = [i for i in of(await claim(client, deliver), alice) if i["channel"]["id"] == mailbox["id"]]
    assert held["event"]["type"] == "test"


async def test_resending_is_limited_like_tests(client, alice, usage_app):
    mailbox = await create_channel(client, alice, _email())
    resend = f"/api/v1/channels/{mailbox['id']}/resend-confirmation"
    # Creating it sent the first email, counted as one of the minute's sends.
    for _ in range(usage_app.state.settings.channel_tests_per_minute - 1):
        assert (await client.post(resend, headers=alice.headers)).status_code == 202
    problem = assert_problem(await client.post(resend, headers=alice.headers), 429)
    assert problem["type"].endswith("/channel-tests-throttled")
    assert "retry-after" in {name.lower() for name in (await client.post(resend, headers=alice.headers)).headers}


async def test_an_address_gets_a_few_confirmation_emails_a_day_whoever_asks(client, alice, bob, usage_app):
    """Creating, re-addressing and resending all send a stranger email: per address (any workspace) and per
    channel, a day's few, then 429 `confirmations-throttled`; the counters never hold the address itself."""
    limit = ChannelTestLimit(usage_app.state.redis, per_minute=50, per_workspace_minute=50, confirmations_per_day=2)
    address = f"stranger-{uuid.uuid4().hex[:8]}@example.com"
    with replaced_state(usage_app, "channel_test_limit", limit):
        first = await create_channel(client, alice, _email(address))
        await create_channel(client, bob, _email(address))  # another workspace, the same address
        r = await client.post("/api/v1/channels", headers=alice.headers, json=_email(address))
        problem = assert_problem(r, 429)  # the address's day is spent, whichever workspace asks
        assert problem["type"].endswith("/confirmations-throttled")
        assert int(r.headers["retry-after"]) > 3600
        other = f"other-{uuid.uuid4().hex[:8]}@example.com"
        r = await client.patch(f"/api/v1/channels/{first['id']}", headers=alice.headers, json={"email": other})
        assert r.status_code == 200, r.text
        # The channel's own day is spent now (created, then re-addressed): back to the first address, or a resend.
        r = await client.patch(f"/api/v1/channels/{first['id']}", headers=alice.headers, json={"email": address})
        assert assert_problem(r, 429)["type"].endswith("/confirmations-throttled")
        resend = f"/api/v1/channels/{first['id']}/resend-confirmation"
        assert_problem(await client.post(resend, headers=alice.headers), 429)
    keys = [k.decode() async for k in usage_app.state.redis.scan_iter("owr:usage:confirmations:*")]
    assert keys
    assert not any(address.split("@")[0] in k or other.split("@")[0] in k for k in keys)
