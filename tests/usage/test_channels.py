"""Channels: create, read, change, rotate, delete; the URL and the secret shown once, sealed at rest, never logged."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from owr_shared.envelope import SealedSecret
from owr_usage.channels import targets
from owr_usage.channels.errors import InvalidChannelTarget
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.sealing import binding
from tests.support.db import savepoint
from tests.support.http import assert_problem, bearer
from tests.support.logs import captured_json_logs
from tests.support.ports import closed_port
from tests.support.tokens import access_claims
from tests.usage.channels_kit import claim, create_channel, of, quiet_outbox, receiver_url, send_test, webhook
from tests.usage.conftest import replaced_state


def _token_caller(keyring, tenant, *scopes: str) -> dict[str, str]:
    """The JWT auth mints for an API token: it carries `tid` and the token's `scope`."""
    claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
    return bearer(keyring.access_token(tenant.user_id, tenant.workspace_id, **claims))


async def _audit(db_connection, channel_id: str) -> list[str]:
    async with savepoint(db_connection) as conn:
        rows = await conn.execute(
            text("SELECT action FROM usage.channel_audit WHERE channel_id = :c ORDER BY id"), {"c": channel_id}
        )
        return [row.action for row in rows]


async def test_a_webhook_shows_its_secret_once_and_its_url_never(client, alice, capsys, db_connection, service_headers):
    body = webhook(events=["budget.exceeded", "key.invalid", "budget.exceeded"])
    url = body["url"]
    with captured_json_logs(capsys, "usage") as logs:
        answer = await client.post("/api/v1/channels", headers=alice.headers, json=body)
        assert answer.status_code == 201, answer.text
        # The one answer with the secret: no cache along the way keeps it.
        assert answer.headers["cache-control"] == "no-store"
        created = answer.json()
        secret = created["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        assert created["target_hint"] == "https://receiver.example.com"
        assert created["events"] == ["budget.exceeded", "key.invalid"]
        assert created["enabled"] is True
        assert url not in str(created)
        channel = f"/api/v1/channels/{created['id']}"
        later = [
            await client.get(channel, headers=alice.headers),
            await client.get("/api/v1/channels", headers=alice.headers),
            await client.patch(channel, headers=alice.headers, json={"name": "renamed"}),
            await client.post(f"{channel}/test", headers=alice.headers),
            await client.get(f"{channel}/deliveries", headers=alice.headers),
            await client.get("/api/v1/alerts", headers=alice.headers),
        ]
        for r in later:
            assert r.status_code in (200, 202), r.text
            assert secret not in r.text
            assert url not in r.text
            assert url.rsplit("/", 1)[1] not in r.text
        assert "secret" not in later[0].json()
        # The worker's claim reveals them (and only it); a rotation shows the new secret once.
        await quiet_outbox(db_connection, alice)
        [item] = of(await claim(client, service_headers("alerts:deliver")), alice)
        assert (item["channel"]["url"], item["channel"]["secrets"]) == (url, [secret])
        rotated = (await client.post(f"{channel}/rotate-secret", headers=alice.headers)).json()["secret"]
        assert rotated not in (await client.get(channel, headers=alice.headers)).text
        logged = logs.getvalue()
        assert rotated not in logged
        assert str(created["id"]) in logged  # the pipeline did capture the requests' lines
        assert secret not in logged
        assert secret.removeprefix("whsec_") not in logged
        assert url.rsplit("/", 1)[1] not in logged
    assert await _audit(db_connection, created["id"]) == ["created", "updated", "revealed", "rotated"]


async def test_slack_discord_and_email_channels(client, alice):
    slack = await create_channel(
        client, alice, {"type": "slack", "name": "s", "url": "https://hooks.slack.com/services/T0/B0/xyz"}
    )
    discord = await create_channel(
        client, alice, {"type": "discord", "name": "d", "url": "https://discord.com/api/webhooks/1/abc"}
    )
    email = await create_channel(client, alice, {"type": "email", "name": "e", "email": " Ops.Team@Example.COM "})
    assert (slack["secret"], slack["target_hint"]) == (None, "https://hooks.slack.com")
    assert (discord["secret"], discord["target_hint"]) == (None, "https://discord.com")
    assert (email["secret"], email["target_hint"], email["events"]) == (None, "o***@example.com", None)
    listed = (await client.get("/api/v1/channels", headers=alice.headers, params={"per_page": 2})).json()
    assert listed["total"] == 3
    assert [c["id"] for c in listed["items"]] == [email["id"], discord["id"]]  # newest first
    assert "ops.team" not in str(listed)


INVALID: list[dict[str, Any]] = [
    {"type": "webhook", "name": "x"},  # no url
    {"type": "webhook", "name": "x", "url": "https://a.example.com/h", "email": "a@example.com"},
    {"type": "email", "name": "x", "url": "https://a.example.com/h"},
    {"type": "email", "name": "x", "email": "not an address"},
    {"type": "webhook", "name": "x", "url": "ftp://a.example.com/secret-token-1"},
    {"type": "webhook", "name": "x", "url": "https://user:secret-token-1@a.example.com/h"},
    {"type": "webhook", "name": "x", "url": "/relative/secret-token-1"},
    {"type": "webhook", "name": "x", "url": "https://a.example.com:99999/secret-token-1"},
    {"type": "webhook", "name": "x", "url": "https://a.example.com/secret token-1"},
    {"type": "webhook", "name": "x", "url": "https://a.example.com/" + "a" * 2100},
    {"type": "slack", "name": "x", "url": "https://hooks.example.com/services/secret-token-1"},
    {"type": "slack", "name": "x", "url": "https://hooks.slack.com/other/secret-token-1"},
    {"type": "discord", "name": "x", "url": "https://discord.com/other/secret-token-1"},
    {"type": "discord", "name": "x", "url": "https://evil.example.com/api/webhooks/secret-token-1"},
    {"type": "webhook", "name": "", "url": "https://a.example.com/h"},
    {"type": "webhook", "name": "a\x00b", "url": "https://a.example.com/h"},
    {"type": "webhook", "name": "n" * 101, "url": "https://a.example.com/h"},
    {"type": "webhook", "name": "x", "url": "https://a.example.com/h", "events": []},
    {"type": "webhook", "name": "x", "url": "https://a.example.com/h", "events": ["budget.nope"]},
    {"type": "pager", "name": "x", "url": "https://a.example.com/h"},
    {"type": "webhook", "name": "x", "url": "https://a.example.com/h", "secret": "whsec_mine"},
    {"type": "webhook", "name": "x", "url": 42},
]


@pytest.mark.parametrize("body", INVALID)
async def test_bad_channels_are_422_without_an_echo(client, alice, body):
    r = await client.post("/api/v1/channels", headers=alice.headers, json=body)
    assert_problem(r, 422)
    assert "secret-token-1" not in r.text


def test_what_a_deployment_admits():
    for production in (True, False):
        targets.check_url("webhook", "https://a.example.com/h", production=production)
        targets.check_url("slack", "https://hooks.slack.com/services/T/B/x", production=production)
        for host in ("discord.com", "discordapp.com"):
            targets.check_url("discord", f"https://{host}/api/webhooks/1/x", production=production)
    # http and local stand-ins for Slack and Discord: development and test only.
    targets.check_url("webhook", "http://127.0.0.1:8080/h", production=False)
    targets.check_url("slack", "http://localhost:9000/anything", production=False)
    targets.check_url("discord", "http://[::1]:9000/anything", production=False)
    for channel_type, url in (
        ("webhook", "http://a.example.com/h"),
        ("slack", "https://localhost:9000/anything"),
        ("discord", "http://127.0.0.1:9000/api/webhooks/1/x"),
    ):
        with pytest.raises(InvalidChannelTarget):
            targets.check_url(channel_type, url, production=True)
    assert targets.url_hint("https://Hooks.Example.com:8443/p?q=1") == "https://hooks.example.com:8443"
    assert targets.url_hint("http://[::1]:9000/x") == "http://[::1]:9000"
    assert targets.email_hint("someone@example.org") == "s***@example.org"


async def test_the_url_and_the_secret_are_sealed_at_rest(client, alice, db_connection, usage_app):
    body = webhook()
    created = await create_channel(client, alice, body)
    async with savepoint(db_connection) as conn:
        channel = (
            await conn.execute(text("SELECT * FROM usage.alert_channels WHERE id = :c"), {"c": created["id"]})
        ).one()
        sealed = (
            await conn.execute(
                text("SELECT * FROM usage.channel_secrets WHERE channel_id = :c ORDER BY kind"), {"c": created["id"]}
            )
        ).all()
    assert body["url"] not in str(tuple(channel))
    assert [row.kind for row in sealed] == ["secret", "target"]
    envelope = usage_app.state.channel_envelope
    for row in sealed:
        for plaintext in (body["url"], created["secret"]):
            assert plaintext.encode() not in row.ciphertext
            assert plaintext.encode() not in row.wrapped_dek
        envelope_row = SealedSecret(row.ciphertext, row.nonce, row.wrapped_dek, row.dek_nonce, row.kek_version)
        opened = envelope.open(envelope_row, binding(uuid.UUID(alice.workspace_id), uuid.UUID(created["id"]), row.kind))
        assert opened == (body["url"] if row.kind == "target" else created["secret"])
        assert "***" in repr(envelope_row)


async def test_patch_changes_fields_and_reseals_the_target(client, alice, service_headers, db_connection, clock):
    await quiet_outbox(db_connection, alice)
    created = await create_channel(client, alice, webhook(events=["test"]))
    url = f"/api/v1/channels/{created['id']}"
    new_url = receiver_url("other.example.net")
    r = await client.patch(url, headers=alice.headers, json={"name": " new name ", "url": new_url, "events": None})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["events"], changed["target_hint"]) == (
        "new name",
        None,
        "https://other.example.net",
    )
    assert new_url not in r.text
    # Fields left out stay; the worker is given the new URL, the same secret.
    r = await client.patch(url, headers=alice.headers, json={"events": ["key.invalid"]})
    assert (r.json()["name"], r.json()["events"]) == ("new name", ["key.invalid"])
    await send_test(client, alice, created["id"])
    [item] = of(await claim(client, service_headers("alerts:deliver")), alice)
    assert item["channel"]["url"] == new_url
    assert item["channel"]["secrets"] == [created["secret"]]
    for body in ({"email": "a@example.com"}, {"url": "ftp://x.example.com"}, {"type": "email"}, {"enabled": "yes"}):
        assert_problem(await client.patch(url, headers=alice.headers, json=body), 422)


async def test_disabling_and_enabling_by_hand(client, alice, db_connection):
    created = await create_channel(client, alice, webhook())
    url = f"/api/v1/channels/{created['id']}"
    await send_test(client, alice, created["id"])
    disabled = (await client.patch(url, headers=alice.headers, json={"enabled": False})).json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled by a user")
    problem = assert_problem(await client.post(f"{url}/test", headers=alice.headers), 409)
    assert problem["type"].endswith("/channel-disabled")
    async with savepoint(db_connection) as conn:
        statuses = await conn.scalars(
            text("SELECT status FROM usage.alert_deliveries WHERE channel_id = :c"), {"c": created["id"]}
        )
        assert list(statuses) == ["failed"]
    enabled = (await client.patch(url, headers=alice.headers, json={"enabled": True})).json()
    assert (enabled["enabled"], enabled["disabled_at"], enabled["disabled_reason"]) == (True, None, None)
    await send_test(client, alice, created["id"])
    assert await _audit(db_connection, created["id"]) == ["created", "disabled", "enabled"]


async def test_rotation_keeps_the_old_secret_signing_for_a_day(client, alice, service_headers, db_connection, clock):
    await quiet_outbox(db_connection, alice)
    created = await create_channel(client, alice, webhook())
    url = f"/api/v1/channels/{created['id']}"
    r = await client.post(f"{url}/rotate-secret", headers=alice.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    for shown in (
        (await client.get(url, headers=alice.headers)).text,
        (await client.get("/api/v1/channels", headers=alice.headers)).text,
    ):
        assert rotated["secret"] not in shown
        assert created["secret"] not in shown
    deliver = service_headers("alerts:deliver")
    await send_test(client, alice, created["id"])
    [item] = of(await claim(client, deliver), alice)
    assert item["channel"]["secrets"] == [rotated["secret"], created["secret"]]  # newest first
    clock.advance(hours=24, seconds=1)
    await send_test(client, alice, created["id"])
    items = of(await claim(client, deliver), alice)
    assert items
    assert all(i["channel"]["secrets"] == [rotated["secret"]] for i in items)
    # Two rotations in a row: the newest two sign.
    third = (await client.post(f"{url}/rotate-secret", headers=alice.headers)).json()["secret"]
    await send_test(client, alice, created["id"])
    clock.advance(minutes=2)
    signing = {tuple(i["channel"]["secrets"]) for i in of(await claim(client, deliver), alice)}
    assert signing == {(third, rotated["secret"])}
    assert (await _audit(db_connection, created["id"])).count("rotated") == 2
    email = await create_channel(client, alice, {"type": "email", "name": "e", "email": "a@example.com"})
    problem = assert_problem(
        await client.post(f"/api/v1/channels/{email['id']}/rotate-secret", headers=alice.headers), 409
    )
    assert problem["type"].endswith("/channel-has-no-secret")


async def test_delete_removes_the_channel_and_keeps_its_audit(client, alice, db_connection):
    created = await create_channel(client, alice, webhook())
    await send_test(client, alice, created["id"])
    url = f"/api/v1/channels/{created['id']}"
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert_problem(await client.get(url, headers=alice.headers), 404)
    assert_problem(await client.delete(url, headers=alice.headers), 404)
    async with savepoint(db_connection) as conn:
        for table in ("channel_secrets", "alert_deliveries"):
            count = await conn.scalar(
                text(f"SELECT count(*) FROM usage.{table} WHERE channel_id = :c"),  # noqa: S608 - fixed names
                {"c": created["id"]},
            )
            assert count == 0, table
    assert await _audit(db_connection, created["id"]) == ["created", "deleted"]
    # The event stays in the history, without the deleted channel's delivery.
    [event] = (await client.get("/api/v1/alerts", headers=alice.headers)).json()["items"]
    assert (event["type"], event["deliveries"]) == ("test", [])


async def test_another_workspaces_channel_is_404_everywhere(client, alice, bob):
    created = await create_channel(client, alice, webhook())
    await send_test(client, alice, created["id"])
    delivery = (await client.get("/api/v1/alerts", headers=alice.headers)).json()["items"][0]["deliveries"][0]
    assert delivery["channel_id"] == created["id"]
    base = f"/api/v1/channels/{created['id']}"
    calls = [
        ("GET", base, None),
        ("PATCH", base, {"name": "mine"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
    ]
    for method, url, body in calls:
        problem = assert_problem(await client.request(method, url, headers=bob.headers, json=body), 404)
        assert problem["type"].endswith("/channel-not-found")
    assert (await client.get("/api/v1/channels", headers=bob.headers)).json()["total"] == 0
    assert (await client.get("/api/v1/alerts", headers=bob.headers)).json()["total"] == 0
    assert (await client.get(base, headers=alice.headers)).json()["name"] == "ops"


async def test_api_tokens_need_alerts_read_and_alerts_write(client, alice, keyring):
    reader = _token_caller(keyring, alice, "alerts:read")
    writer = _token_caller(keyring, alice, "alerts:write")
    neither = _token_caller(keyring, alice, "usage:read", "keys:write")
    for headers in (neither, writer):
        problem = assert_problem(await client.get("/api/v1/channels", headers=headers), 403)
        assert "alerts:read" in problem["detail"]
        assert_problem(await client.get("/api/v1/alerts", headers=headers), 403)
    for headers in (neither, reader):
        problem = assert_problem(await client.post("/api/v1/channels", headers=headers, json=webhook()), 403)
        assert "alerts:write" in problem["detail"]
    r = await client.post("/api/v1/channels", headers=writer, json=webhook())
    assert r.status_code == 201, r.text
    assert (await client.get("/api/v1/channels", headers=reader)).json()["total"] == 1
    assert (await client.get("/api/v1/alerts", headers=reader)).status_code == 200


async def test_a_workspace_has_a_bounded_number_of_channels(client, alice, usage_app):
    capped = usage_app.state.settings.model_copy(update={"max_channels_per_workspace": 2})
    with replaced_state(usage_app, "settings", capped):
        for _ in range(2):
            await create_channel(client, alice, webhook())
        problem = assert_problem(await client.post("/api/v1/channels", headers=alice.headers, json=webhook()), 409)
    assert problem["type"].endswith("/too-many-channels")


async def test_an_erased_workspace_takes_no_new_channel(client, alice, service_headers):
    erase = await client.delete(
        f"/internal/workspaces/{alice.workspace_id}", headers=service_headers("workspaces:delete")
    )
    assert erase.status_code == 204
    problem = assert_problem(await client.post("/api/v1/channels", headers=alice.headers, json=webhook()), 410)
    assert problem["type"].endswith("/workspace-erased")


async def test_an_unverified_address_cannot_point_alerts_anywhere_until_it_is_verified(client, keyring, alice):
    """Issue 16: an unverified account cannot receive alerts. Creating, enabling, re-targeting, changing the
    events of or testing a channel is refused (403 `email-not-verified`) while the token says the address is
    not verified; the token auth mints after the verification (verified) is let through. Reading, renaming
    (with the events it has, in any order, as the web form sends them) and disabling stay open."""
    # Channels an admin with a verified address made.
    created = await create_channel(client, alice, webhook(events=["budget.exceeded", "key.invalid"]))
    mailbox = await create_channel(client, alice, {"type": "email", "name": "e", "email": "ops@example.com"})
    channel = f"/api/v1/channels/{created['id']}"
    unverified = bearer(keyring.access_token(alice.user_id, alice.workspace_id, role="admin", email_verified=False))
    no_claim = access_claims(alice.user_id, alice.workspace_id)
    del no_claim["email_verified"]
    for headers in (unverified, bearer(keyring.sign(no_claim))):  # a token without the claim counts as unverified
        refused = [
            await client.post("/api/v1/channels", headers=headers, json=webhook()),
            await client.post(f"{channel}/test", headers=headers),
            await client.patch(channel, headers=headers, json={"enabled": True}),
            await client.patch(channel, headers=headers, json={"url": receiver_url("elsewhere.example.com")}),
            await client.patch(
                f"/api/v1/channels/{mailbox['id']}", headers=headers, json={"email": "someone.else@example.com"}
            ),
            await client.patch(channel, headers=headers, json={"events": ["budget.exceeded"]}),
            await client.patch(channel, headers=headers, json={"events": None}),  # every event type
        ]
        for answer in refused:
            problem = assert_problem(answer, 403)
            assert problem["type"].endswith("/email-not-verified")
            assert "verify your email address to receive alerts" in problem["detail"].lower()
    assert (await client.get(channel, headers=unverified)).status_code == 200
    assert (await client.patch(channel, headers=unverified, json={"name": "renamed"})).status_code == 200
    same = {"name": "again", "events": ["key.invalid", "budget.exceeded"]}
    assert (await client.patch(channel, headers=unverified, json=same)).status_code == 200
    unchanged = (await client.get(channel, headers=alice.headers)).json()
    assert (unchanged["events"], unchanged["target_hint"]) == (
        ["budget.exceeded", "key.invalid"],
        created["target_hint"],
    )
    mail_hint = (await client.get(f"/api/v1/channels/{mailbox['id']}", headers=alice.headers)).json()["target_hint"]
    assert mail_hint == "o***@example.com"
    assert (await client.patch(channel, headers=unverified, json={"enabled": False})).json()["enabled"] is False

    verified = bearer(keyring.access_token(alice.user_id, alice.workspace_id, role="admin"))
    assert (await client.patch(channel, headers=verified, json={"enabled": True})).json()["enabled"] is True
    assert (await client.post(f"{channel}/test", headers=verified)).status_code == 202
    assert (await client.post("/api/v1/channels", headers=verified, json=webhook("second"))).status_code == 201


async def test_a_channel_takes_a_few_tests_a_minute(client, alice, bob, usage_app):
    """`USAGE_CHANNEL_TESTS_PER_MINUTE` (5) tests of one channel a minute; the next is a 429 with Retry-After
    and raises no event. Each channel counts apart, and another workspace cannot spend a channel's tests."""
    per_minute = usage_app.state.settings.channel_tests_per_minute
    first = await create_channel(client, alice, webhook("first"))
    second = await create_channel(client, alice, webhook("second"))
    path = f"/api/v1/channels/{first['id']}/test"
    assert_problem(await client.post(path, headers=bob.headers), 404)  # not bob's: counts nothing
    for _ in range(per_minute):
        assert (await client.post(path, headers=alice.headers)).status_code == 202
    refused = await client.post(path, headers=alice.headers)
    problem = assert_problem(refused, 429)
    assert problem["type"].endswith("/channel-tests-throttled")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    tests = (await client.get("/api/v1/alerts", headers=alice.headers, params={"per_page": 250})).json()
    assert sum(1 for event in tests["items"] if event["type"] == "test") == per_minute
    assert (await client.post(f"/api/v1/channels/{second['id']}/test", headers=alice.headers)).status_code == 202


async def test_a_workspace_takes_a_few_tests_a_minute_over_all_its_channels(client, alice, bob, usage_app):
    """`USAGE_WORKSPACE_CHANNEL_TESTS_PER_MINUTE` (20) protects a receiver from many channels to one URL, or a
    loop of create, test and delete: a deleted channel's tests still count. The next is a 429 with
    Retry-After that raises no event; another workspace keeps its own."""
    per_workspace = usage_app.state.settings.workspace_channel_tests_per_minute
    assert per_workspace > usage_app.state.settings.channel_tests_per_minute  # so one channel's limit is not it
    for i in range(per_workspace):
        hook = await create_channel(client, alice, webhook(f"loop {i}"))
        assert (await client.post(f"/api/v1/channels/{hook['id']}/test", headers=alice.headers)).status_code == 202
        assert (await client.delete(f"/api/v1/channels/{hook['id']}", headers=alice.headers)).status_code == 204
    fresh = await create_channel(client, alice, webhook("fresh"))
    refused = await client.post(f"/api/v1/channels/{fresh['id']}/test", headers=alice.headers)
    problem = assert_problem(refused, 429)
    assert problem["type"].endswith("/channel-tests-throttled")
    assert f"workspace's channels take at most {per_workspace}" in problem["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    tests = (await client.get("/api/v1/alerts", headers=alice.headers, params={"per_page": 250})).json()
    assert sum(1 for event in tests["items"] if event["type"] == "test") == per_workspace
    others = await create_channel(client, bob, webhook())
    assert (await client.post(f"/api/v1/channels/{others['id']}/test", headers=bob.headers)).status_code == 202


async def test_without_redis_a_test_is_a_fast_503_and_raises_nothing(client, alice, usage_app):
    """The counter fails closed: without it nothing would bound the sends (the channel itself stays usable)."""
    hook = await create_channel(client, alice, webhook())
    away = Redis.from_url(f"redis://127.0.0.1:{closed_port()}", socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        with replaced_state(
            usage_app,
            "channel_test_limit",
            ChannelTestLimit(away, per_minute=5, per_workspace_minute=20, confirmations_per_day=3),
        ):
            r = await client.post(f"/api/v1/channels/{hook['id']}/test", headers=alice.headers)
    finally:
        await away.aclose()
    assert assert_problem(r, 503)["type"].endswith("/channel-tests-unavailable")
    assert r.headers["retry-after"] == "5"
    alerts = (await client.get("/api/v1/alerts", headers=alice.headers)).json()
    assert not [event for event in alerts["items"] if event["type"] == "test"]
