"""The worker's side of alert deliveries: claims under a lease, attempts, backoff, disabling, retries, the log."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from owr_shared.wire.alerts import DELIVER_ALERTS_JOB_ID
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.deliveries.schedule import BACKOFF_SECONDS, JITTER, retry_delay
from tests.support.db import savepoint
from tests.support.http import assert_problem, bearer
from tests.usage.channels_kit import (
    claim,
    confirm_email,
    create_channel,
    of,
    quiet_outbox,
    report,
    send_test,
    webhook,
)
from tests.usage.conftest import replaced_state


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _log(client, tenant, channel_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/channels/{channel_id}/deliveries", headers=tenant.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def _channel(client, tenant, channel_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/channels/{channel_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_test_event_is_claimed_delivered_logged_and_listed(client, alice, deliver, db_connection, quiet, clock):
    hook = await create_channel(client, alice, webhook())
    body = webhook()
    other = await create_channel(client, alice, body)
    event_id = await send_test(client, alice, hook["id"])
    claimed = await claim(client, deliver)
    [item] = of(claimed, alice)
    assert item["attempt"] == 1
    assert item["event"]["id"] == event_id
    assert item["event"]["type"] == "test"
    assert item["event"]["data"]["channel_id"] == hook["id"]
    assert item["channel"]["id"] == hook["id"]  # only the channel tested, not `other`
    assert item["channel"]["type"] == "webhook"
    assert item["channel"]["secrets"] == [hook["secret"]]
    assert item["channel"]["url"].startswith("https://receiver.example.com/hooks/")
    assert claimed["backlog"]["depth"] >= 1
    assert claimed["backlog"]["oldest_due_seconds"] >= 0
    # Claimed and leased: a second claim does not get it.
    assert of(await claim(client, deliver), alice) == []
    state = await report(client, deliver, item["id"], "delivered", status_code=204)
    assert state == {
        "id": item["id"],
        "status": "delivered",
        "attempts": 1,
        "next_attempt_at": None,
        "channel_disabled": False,
    }
    [entry] = await _log(client, alice, hook["id"])
    assert entry["id"] == item["id"]
    assert (entry["event_id"], entry["event_type"], entry["status"], entry["attempt"]) == (
        event_id,
        "test",
        "delivered",
        1,
    )
    assert (entry["status_code"], entry["error"], entry["next_attempt_at"]) == (204, None, None)
    assert _at(entry["at"]) == clock.now
    assert await _log(client, alice, other["id"]) == []
    [event] = (await client.get("/api/v1/alerts", headers=alice.headers)).json()["items"]
    assert (event["id"], event["type"], event["data"]["name"]) == (event_id, "test", "ops")
    assert event["deliveries"] == [{"channel_id": hook["id"], "status": "delivered", "attempts": 1}]
    async with savepoint(db_connection) as conn:
        revealed = await conn.scalar(
            text("SELECT count(*) FROM usage.channel_audit WHERE channel_id = :c AND action = 'revealed'"),
            {"c": hook["id"]},
        )
    assert revealed == 1
    assert body["url"] not in str(event)


async def test_an_email_channel_is_revealed_with_its_address(client, alice, deliver, quiet):
    channel = await create_channel(client, alice, {"type": "email", "name": "e", "email": "On.Call@Example.com"})
    # Its first (and, until it is confirmed, only) mail is the confirmation.
    [item] = of(await claim(client, deliver), alice)
    assert item["channel"]["id"] == channel["id"]
    assert (item["channel"]["email"], item["channel"]["url"], item["channel"]["secrets"]) == (
        "on.call@example.com",
        None,
        [],
    )
    assert item["event"]["type"] == "channel.confirmation"


async def test_an_expired_lease_is_claimed_again_with_the_same_event(client, alice, deliver, quiet, clock):
    hook = await create_channel(client, alice, webhook())
    event_id = await send_test(client, alice, hook["id"])
    [first] = of(await claim(client, deliver, lease_seconds=30), alice)
    clock.advance(seconds=29)
    assert of(await claim(client, deliver), alice) == []
    clock.advance(seconds=2)
    [again] = of(await claim(client, deliver), alice)
    assert (again["id"], again["event"]["id"], again["attempt"]) == (first["id"], event_id, 1)
    # The late worker's report counts once; the second one changes nothing.
    assert (await report(client, deliver, first["id"], "delivered", status_code=200))["status"] == "delivered"
    repeat = await report(client, deliver, again["id"], "failed", status_code=500)
    assert (repeat["status"], repeat["attempts"]) == ("delivered", 1)
    assert len(await _log(client, alice, hook["id"])) == 1


async def test_failures_back_off_honour_retry_after_and_a_day_of_them_disables(
    client, alice, deliver, quiet, clock, db_connection
):
    hook = await create_channel(client, alice, webhook())
    witness = await create_channel(client, alice, {"type": "email", "name": "oncall", "email": "a@example.com"})
    await confirm_email(client, deliver, alice, witness["id"])
    unrelated = await create_channel(client, alice, webhook(events=["budget.exceeded"]))
    event_id = await send_test(client, alice, hook["id"])
    waits = []
    for attempt in range(1, len(BACKOFF_SECONDS) + 1):
        [item] = of(await claim(client, deliver), alice)
        assert (item["attempt"], item["event"]["id"]) == (attempt, event_id)
        retry_after = 4000 if attempt == 1 else None
        state = await report(
            client, deliver, item["id"], "failed", status_code=503, error="x" * 3000, retry_after_seconds=retry_after
        )
        assert (state["status"], state["attempts"], state["channel_disabled"]) == ("pending", attempt, False)
        wait = (_at(state["next_attempt_at"]) - clock.now).total_seconds()
        waits.append(wait)
        # Not due before its time.
        clock.advance(seconds=wait - 1)
        assert of(await claim(client, deliver), alice) == []
        clock.advance(seconds=1)
    assert waits[0] == 4000  # Retry-After, longer than the 5 s backoff
    for wait, backoff in zip(waits[1:], BACKOFF_SECONDS[1:], strict=True):
        assert backoff * (1 - JITTER) <= wait <= backoff * (1 + JITTER)
    channel = await _channel(client, alice, hook["id"])
    assert (channel["consecutive_failures"], channel["enabled"]) == (len(BACKOFF_SECONDS), True)
    # The eighth failure, more than a day after the first (the jitter's low end is 23.2 h: two hours more): the
    # channel is disabled and the others are told.
    clock.advance(hours=2)
    [item] = of(await claim(client, deliver), alice)
    state = await report(client, deliver, item["id"], "failed", error="timeout")
    assert (state["status"], state["next_attempt_at"], state["channel_disabled"]) == ("failed", None, True)
    channel = await _channel(client, alice, hook["id"])
    assert channel["enabled"] is False
    assert "24 hours" in channel["disabled_reason"]
    log = await _log(client, alice, hook["id"])
    assert [e["attempt"] for e in log] == list(range(len(BACKOFF_SECONDS) + 1, 0, -1))
    assert all(e["status"] == "failed" for e in log)
    assert len(log[-1]["error"]) == 300
    assert log[-1]["status_code"] == 503
    [told] = of(await claim(client, deliver), alice)
    assert told["channel"]["id"] == witness["id"]
    assert told["event"]["type"] == "channel.disabled"
    assert told["event"]["data"]["channel_id"] == hook["id"]
    assert told["event"]["data"]["reason"] == channel["disabled_reason"]
    assert unrelated["id"] not in str(told)
    assert_problem(await client.post(f"/api/v1/channels/{hook['id']}/test", headers=alice.headers), 409)


async def test_a_410_disables_the_channel_at_once(client, alice, deliver, quiet, db_connection):
    hook = await create_channel(client, alice, webhook())
    witness = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])
    await send_test(client, alice, hook["id"])
    first, second = of(await claim(client, deliver, limit=200), alice)
    state = await report(client, deliver, first["id"], "gone", status_code=410)
    assert (state["status"], state["channel_disabled"]) == ("failed", True)
    # The other leased delivery failed with the channel: its report changes nothing.
    late = await report(client, deliver, second["id"], "delivered", status_code=200)
    assert (late["status"], late["attempts"]) == ("failed", 0)
    channel = await _channel(client, alice, hook["id"])
    assert (channel["enabled"], channel["disabled_reason"]) == (False, "the receiver answered 410 Gone")
    [told] = of(await claim(client, deliver), alice)
    assert (told["channel"]["id"], told["event"]["type"]) == (witness["id"], "channel.disabled")
    async with savepoint(db_connection) as conn:
        actions = await conn.scalars(
            text("SELECT action FROM usage.channel_audit WHERE channel_id = :c ORDER BY id"), {"c": hook["id"]}
        )
        assert list(actions) == ["created", "revealed", "disabled"]
    # Re-enabled by hand, it takes events again.
    r = await client.patch(f"/api/v1/channels/{hook['id']}", headers=alice.headers, json={"enabled": True})
    assert r.json()["enabled"] is True
    await send_test(client, alice, hook["id"])
    assert [i["channel"]["id"] for i in of(await claim(client, deliver), alice)] == [hook["id"]]


async def test_an_error_text_postgresql_cannot_store_is_kept_cleaned(client, alice, deliver, quiet):
    hook = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])
    (item,) = of(await claim(client, deliver), alice)
    state = await report(client, deliver, item["id"], "failed", error="receiver said \x00 no")
    assert state["status"] == "pending"
    r = await client.get(f"/api/v1/channels/{hook['id']}/deliveries", headers=alice.headers)
    assert r.json()["items"][0]["error"] == "receiver said  no"


async def test_a_success_ends_a_run_of_failures(client, alice, deliver, quiet, clock):
    hook = await create_channel(client, alice, webhook())
    for _ in range(3):
        await send_test(client, alice, hook["id"])
        for item in of(await claim(client, deliver), alice):
            await report(client, deliver, item["id"], "failed", status_code=500)
        clock.advance(minutes=10)
    channel = await _channel(client, alice, hook["id"])
    assert channel["consecutive_failures"] >= 3
    assert channel["failing_since"] is not None
    due = of(await claim(client, deliver), alice)
    await report(client, deliver, due[0]["id"], "delivered", status_code=200)
    channel = await _channel(client, alice, hook["id"])
    assert (channel["consecutive_failures"], channel["failing_since"], channel["enabled"]) == (0, None, True)


async def test_a_spent_schedule_fails_the_delivery(client, alice, deliver, quiet, db_connection):
    hook = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text("UPDATE usage.alert_deliveries SET attempts = :n WHERE channel_id = :c"),
            {"n": len(BACKOFF_SECONDS), "c": hook["id"]},
        )
    [item] = of(await claim(client, deliver), alice)
    assert item["attempt"] == len(BACKOFF_SECONDS) + 1
    state = await report(client, deliver, item["id"], "failed", error="refused", retry_after_seconds=60)
    assert (state["status"], state["next_attempt_at"], state["channel_disabled"]) == ("failed", None, False)


def test_the_schedule_with_jitter_and_retry_after():
    rng = random.Random(15)
    for attempt, backoff in enumerate(BACKOFF_SECONDS, start=1):
        for _ in range(50):
            delay = retry_delay(attempt, None, rng)
            assert delay is not None
            assert backoff * 0.8 <= delay.total_seconds() <= backoff * 1.2
    assert retry_delay(len(BACKOFF_SECONDS) + 1, 60, rng) is None
    assert retry_delay(1, 3600, rng) == timedelta(seconds=3600)
    assert retry_delay(2, 1, rng, schedule=(1, 2)) is not None
    assert retry_delay(3, 1, rng, schedule=(1, 2)) is None


async def test_retry_redelivers_with_the_same_event(client, alice, bob, deliver, quiet, clock):
    hook = await create_channel(client, alice, webhook())
    event_id = await send_test(client, alice, hook["id"])
    [item] = of(await claim(client, deliver), alice)
    url = f"/api/v1/channels/{hook['id']}/deliveries/{item['id']}/retry"
    problem = assert_problem(await client.post(url, headers=alice.headers), 409)
    assert problem["type"].endswith("/delivery-in-flight")
    await report(client, deliver, item["id"], "failed", status_code=503)
    r = await client.post(url, headers=alice.headers)
    assert r.status_code == 202, r.text
    assert (r.json()["id"], r.json()["event_id"]) == (item["id"], event_id)
    [again] = of(await claim(client, deliver), alice)
    assert (again["id"], again["event"]["id"], again["attempt"]) == (item["id"], event_id, 2)
    await report(client, deliver, again["id"], "delivered", status_code=200)
    # Delivered: a retry would send the receiver the event a second time, so there is nothing to retry.
    problem = assert_problem(await client.post(url, headers=alice.headers), 409)
    assert problem["type"].endswith("/delivery-delivered")
    assert "already succeeded" in problem["detail"]
    assert of(await claim(client, deliver), alice) == []
    for wrong in (
        f"/api/v1/channels/{hook['id']}/deliveries/{uuid.uuid4()}/retry",
        f"/api/v1/channels/{uuid.uuid4()}/deliveries/{item['id']}/retry",
    ):
        assert_problem(await client.post(wrong, headers=alice.headers), 404)
    assert_problem(await client.post(url, headers=bob.headers), 404)
    await client.patch(f"/api/v1/channels/{hook['id']}", headers=alice.headers, json={"enabled": False})
    problem = assert_problem(await client.post(url, headers=alice.headers), 409)
    assert problem["type"].endswith("/channel-disabled")


async def test_a_retry_needs_a_verified_caller_and_counts_as_a_test(client, alice, keyring, deliver, quiet, usage_app):
    """A retry makes the worker send at once, as a test does: an unverified caller is refused (403
    `email-not-verified`), and retries spend the channel's tests (`USAGE_CHANNEL_TESTS_PER_MINUTE`)."""
    per_minute = usage_app.state.settings.channel_tests_per_minute
    hook = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])  # the first of the minute's tests
    [item] = of(await claim(client, deliver), alice)
    await report(client, deliver, item["id"], "failed", status_code=503)
    url = f"/api/v1/channels/{hook['id']}/deliveries/{item['id']}/retry"
    unverified = bearer(keyring.access_token(alice.user_id, alice.workspace_id, role="admin", email_verified=False))
    problem = assert_problem(await client.post(url, headers=unverified), 403)
    assert problem["type"].endswith("/email-not-verified")
    for _ in range(per_minute - 1):  # a waiting delivery may be made due again, up to the limit
        assert (await client.post(url, headers=alice.headers)).status_code == 202
    refused = await client.post(url, headers=alice.headers)
    assert assert_problem(refused, 429)["type"].endswith("/channel-tests-throttled")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # ... and so the channel's tests are spent too.
    assert_problem(await client.post(f"/api/v1/channels/{hook['id']}/test", headers=alice.headers), 429)


async def test_a_disabled_channels_deliveries_are_never_claimed(client, alice, deliver, quiet):
    hook = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])
    await client.patch(f"/api/v1/channels/{hook['id']}", headers=alice.headers, json={"enabled": False})
    assert of(await claim(client, deliver), alice) == []
    [entry] = (await client.get("/api/v1/alerts", headers=alice.headers)).json()["items"]
    assert entry["deliveries"][0]["status"] == "failed"


async def test_the_result_route(client, alice, deliver, service_headers, quiet):
    assert_problem(
        await client.post(
            f"/internal/deliveries/{uuid.uuid4()}/result", headers=deliver, json={"outcome": "delivered"}
        ),
        404,
    )
    hook = await create_channel(client, alice, webhook())
    await send_test(client, alice, hook["id"])
    [item] = of(await claim(client, deliver), alice)
    url = f"/internal/deliveries/{item['id']}/result"
    assert_problem(await client.post(url, headers=alice.headers, json={"outcome": "delivered"}), 401)
    assert_problem(await client.post(url, headers=service_headers("usage:ingest"), json={"outcome": "delivered"}), 403)
    for body in (
        {"outcome": "lost"},
        {"outcome": "failed", "status_code": 99},
        {"outcome": "failed", "retry_after_seconds": -1},
        {},
    ):
        assert_problem(await client.post(url, headers=deliver, json=body), 422)
    for claim_body in ({"limit": 0}, {"limit": 201}, {"lease_seconds": 5}, {"extra": 1}):
        assert_problem(await client.post("/internal/deliveries/claim", headers=deliver, json=claim_body), 422)


async def test_concurrent_claims_take_disjoint_deliveries(
    committed_client, tenant_factory, deliver, db_engine, usage_app
):
    """SKIP LOCKED: two claims at once never share a delivery, and a delivery another transaction holds is passed over."""
    tenant = tenant_factory()
    # Committed tests and the fuzz leave pending deliveries no worker sends; past CLAIM_MAX of them, oldest-first
    # claims never reach this tenant's (a full run saw 5 of 7). Lease them away for good, as quiet_outbox does.
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE usage.alert_deliveries SET lease_until = 'infinity' WHERE status = 'pending'"))
    hook = await create_channel(committed_client, tenant, webhook())
    # Eight tests of one channel: more than a minute's limit (test_channels.py), so a limit of its own here.
    with replaced_state(
        usage_app,
        "channel_test_limit",
        ChannelTestLimit(usage_app.state.redis, per_minute=8, per_workspace_minute=8, confirmations_per_day=1000),
    ):
        events = {await send_test(committed_client, tenant, hook["id"]) for _ in range(8)}
    holder = await db_engine.connect()
    await holder.begin()
    held = await holder.scalar(
        text("SELECT id FROM usage.alert_deliveries WHERE channel_id = :c ORDER BY id LIMIT 1 FOR UPDATE"),
        {"c": hook["id"]},
    )
    try:
        first, second = await asyncio.gather(claim(committed_client, deliver), claim(committed_client, deliver))
        mine = [of(first, tenant), of(second, tenant)]
        ids = [{item["id"] for item in claimed} for claimed in mine]
        assert not ids[0] & ids[1]
        assert str(held) not in ids[0] | ids[1]
        assert len(ids[0] | ids[1]) == 7
    finally:
        await holder.rollback()
        await holder.close()
    [last] = of(await claim(committed_client, deliver), tenant)
    assert last["id"] == str(held)
    claimed_events = {item["event"]["id"] for claimed in mine for item in claimed} | {last["event"]["id"]}
    assert claimed_events == events
    for item in [*mine[0], *mine[1], last]:
        await report(committed_client, deliver, item["id"], "delivered", status_code=200)


ALERTING_TABLES = (
    "alert_channels",
    "channel_secrets",
    "channel_audit",
    "alert_events",
    "alert_deliveries",
    "alert_delivery_attempts",
    "alert_rules",
    "alert_conditions",
    "budgets",
)


async def _alerting_rows(client, tenant, deliver, db_connection) -> None:
    """A row in every alerting table of `tenant`'s workspace."""
    hook = await create_channel(client, tenant, webhook())
    await client.post(f"/api/v1/channels/{hook['id']}/rotate-secret", headers=tenant.headers)
    await send_test(client, tenant, hook["id"])
    for item in of(await claim(client, deliver), tenant):
        await report(client, deliver, item["id"], "failed", status_code=500)
    async with savepoint(db_connection) as conn:
        ws = tenant.workspace_id
        await conn.execute(
            text(
                "INSERT INTO usage.budgets (id, workspace_id, name, scope_type, amount_usd, period, thresholds)"
                " VALUES (:id, :ws, 'b', 'workspace', 10, 'weekly', '{50,80,100}')"
            ),
            {"id": uuid.uuid4(), "ws": ws},
        )
        await conn.execute(
            text("INSERT INTO usage.alert_rules (workspace_id, rule, enabled, params) VALUES (:ws, 'r', true, '{}')"),
            {"ws": ws},
        )
        await conn.execute(
            text(
                "INSERT INTO usage.alert_conditions (workspace_id, rule, subject, since, data)"
                " VALUES (:ws, 'r', 's', now(), '{}')"
            ),
            {"ws": ws},
        )


async def _counts(db_connection, tenant) -> dict[str, int]:
    counts = {}
    async with savepoint(db_connection) as conn:
        for table in ALERTING_TABLES:
            sql = text(f"SELECT count(*) FROM usage.{table} WHERE workspace_id = :w")  # noqa: S608 (fixed names)
            counts[table] = int(await conn.scalar(sql, {"w": tenant.workspace_id}) or 0)
    return counts


async def test_erasure_removes_every_alerting_row(client, alice, bob, deliver, service_headers, db_connection, quiet):
    await quiet_outbox(db_connection, bob)
    for tenant in (alice, bob):
        await _alerting_rows(client, tenant, deliver, db_connection)
        assert all((await _counts(db_connection, tenant)).values()), tenant
    # The orphan sweep sees a workspace holding alerting rows only.
    before = str(uuid.UUID(int=uuid.UUID(alice.workspace_id).int - 1))
    sweep = service_headers("workspaces:delete")
    r = await client.get("/internal/workspaces", headers=sweep, params={"after": before, "limit": 1})
    assert r.json()["items"] == [alice.workspace_id]
    assert (await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=sweep)).status_code == 204
    assert await _counts(db_connection, alice) == dict.fromkeys(ALERTING_TABLES, 0)
    assert all((await _counts(db_connection, bob)).values())


async def test_a_raised_event_queues_the_workers_delivery_run_once_committed(client, alice, redis_client):
    channel = await create_channel(client, alice, webhook())
    assert await redis_client.zscore("arq:queue", DELIVER_ALERTS_JOB_ID) is None
    await send_test(client, alice, channel["id"])
    # Queued under the poll's id: a run already queued or running absorbs it.
    assert await redis_client.zscore("arq:queue", DELIVER_ALERTS_JOB_ID) is not None
    assert await redis_client.zcard("arq:queue") == 1
    await send_test(client, alice, channel["id"])
    assert await redis_client.zcard("arq:queue") == 1
