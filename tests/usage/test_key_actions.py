"""Key actions (issue 17): the budgets' kill switch (`disable_key_on_exceed`, once per period), apply-limit and
enable-upstream, the worker's claim and report (at least once, in order per key, a key without an account refused
at once and one whose link was lost by the claim failing with a reason), a limit's BYOK setting, `key.disabled`
through the outbox, the anomaly threshold, other workspaces and roles."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.db import create_sessionmaker
from owr_usage.key_actions import service as key_actions
from tests.support.db import savepoint
from tests.support.http import assert_problem, bearer
from tests.support.openrouter import key_list_row
from tests.support.tenants import Tenant
from tests.usage.alerting import Key, create_budget, events, key_status, moment, monday, status_item
from tests.usage.conftest import Ingest, today

LABEL = "sk-or-v1-kil...001"


def upstream_path(key_id: str, what: str = "upstream") -> str:
    return f"/api/v1/keys/{key_id}/{what}"


async def list_account(ingest: Ingest, tenant: Tenant, account: str, *rows: dict[str, Any], when: Any) -> None:
    """The account's `GET /keys` as the worker forwards it."""
    body = {"workspace_id": tenant.workspace_id, "observed_at": when.isoformat(), "keys": list(rows)}
    r = await ingest.call("PUT", f"/internal/accounts/{account}/keys", body)
    assert r.status_code == 204, r.text


async def linked_key(ingest: Ingest, tenant: Tenant, *, hash_: str = "a" * 64, label: str = LABEL) -> tuple[Key, str]:
    """A key synced once and linked to a row of an account's key list: (key, management key id)."""
    account = str(uuid.uuid4())
    tuesday = monday() + timedelta(days=1)
    await list_account(
        ingest, tenant, account, key_list_row(hash=hash_, name="or-name", label=label), when=moment(tuesday, 8)
    )
    key = Key(ingest, tenant, label=label)
    await key.sync(moment(tuesday, 9), "1")
    return key, account


async def upstream(client: httpx.AsyncClient, tenant: Tenant, key_id: str) -> dict[str, Any]:
    r = await client.get(upstream_path(key_id), headers=tenant.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# The last claim's number of each action, which its report carries unless the test says otherwise.
_claims: dict[str, int] = {}


async def claim(ingest: Ingest, action_id: str, expect: int = 200) -> dict[str, Any]:
    r = await ingest.call("POST", f"/internal/key-actions/{action_id}/claim", {"lease_seconds": 60})
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    if expect == 200:
        _claims[action_id] = body["attempts"]
    return body


async def report(ingest: Ingest, action_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("attempt", _claims.get(action_id, 1))
    r = await ingest.call("POST", f"/internal/key-actions/{action_id}/result", body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


# --- the budgets' kill switch ------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", [{"type": "workspace"}, {"type": "account", "id": str(uuid.uuid4())}])
async def test_the_kill_switch_is_for_key_budgets_only(client, alice, scope):
    body = {"name": "b", "scope": scope, "amount_usd": 1, "period": "daily", "disable_key_on_exceed": True}
    problem = assert_problem(await client.post("/api/v1/budgets", headers=alice.headers, json=body), 422)
    assert "disable_key_on_exceed" in str(problem["errors"])
    budget = await create_budget(client, alice, scope=scope)
    assert budget["disable_key_on_exceed"] is False  # off by default
    r = await client.patch(
        f"/api/v1/budgets/{budget['id']}", headers=alice.headers, json={"disable_key_on_exceed": True}
    )
    assert assert_problem(r, 422)["type"].endswith("/kill-switch-needs-key-scope")
    for bad in ("yes", 1, None):
        body = {"name": "b", "scope": {"type": "key", "id": str(uuid.uuid4())}, "amount_usd": 1, "period": "daily"}
        if bad is not None:
            assert_problem(
                await client.post(
                    "/api/v1/budgets", headers=alice.headers, json={**body, "disable_key_on_exceed": bad}
                ),
                422,
            )


async def test_an_exceeded_key_budget_records_one_disable_per_period(client, ingest, alice, db_connection):
    key, _ = await linked_key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    plain = await create_budget(client, alice, scope={"type": "key", "id": key.id}, amount_usd="5")
    assert budget["disable_key_on_exceed"] is True
    assert plain["disable_key_on_exceed"] is False
    tuesday = monday() + timedelta(days=1)
    await key.sync(moment(tuesday, 10), "6")  # the plain budget is exceeded: no action
    assert (await upstream(client, alice, key.id))["actions"] == []
    for hour in (11, 12, 13):  # exceeded, and synced again while exceeded
        await key.sync(moment(tuesday, hour), "12")
    [action] = (await upstream(client, alice, key.id))["actions"]
    assert (action["kind"], action["status"], action["source"]) == ("disable", "pending", "budget")
    assert action["budget_id"] == budget["id"]
    assert action["requested_by"] is None
    assert "budget" in action["reason"]
    assert action["evidence"]["period_start"].startswith(monday().isoformat())
    # Carried out, then enabled again by a user; the next week: exceeded again, a second action.
    await claim(ingest, action["id"])
    await report(ingest, action["id"], outcome="done", disabled=True)
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    await report(ingest, enable, outcome="done", disabled=False)
    next_monday = monday() + timedelta(days=7)
    await key.sync(moment(next_monday, 9), "11")
    actions = [a for a in (await upstream(client, alice, key.id))["actions"] if a["kind"] == "disable"]
    assert len(actions) == 2
    assert len({a["evidence"]["period_start"] for a in actions}) == 2


# --- the worker's claim and report -------------------------------------------------------------------------


async def test_a_disable_is_claimed_applied_once_and_announced(client, ingest, alice, db_connection):
    key, account = await linked_key(ingest, alice, hash_="b" * 64)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    await key.sync(moment(monday() + timedelta(days=1), 12), "20")
    [action] = (await upstream(client, alice, key.id))["actions"]
    claimed = await claim(ingest, action["id"])
    assert claimed["ready"] is True
    assert (claimed["management_key_id"], claimed["api_key_hash"], claimed["kind"]) == (account, "b" * 64, "disable")
    assert (await claim(ingest, action["id"]))["ready"] is False  # leased to the first claim
    state = await report(ingest, action["id"], outcome="done", disabled=True)
    assert (state["status"], state["attempts"]) == ("done", 1)
    # At least once: the same report again, and a late claim, change nothing.
    assert (await report(ingest, action["id"], outcome="done", disabled=True))["status"] == "done"
    late = await claim(ingest, action["id"])
    assert (late["ready"], late["status"]) == (False, "done")
    view = await upstream(client, alice, key.id)
    assert (view["linked"], view["disabled"], view["management_key_id"]) == (True, True, account)
    assert view["actions"][0]["completed_at"] is not None
    [raised] = await events(db_connection, alice, "key.disabled")
    assert raised["data"]["key_id"] == key.id
    assert (raised["data"]["label"], raised["data"]["key_name"]) == (LABEL, "or-name")
    assert raised["data"]["source"] == "budget"
    assert raised["data"]["budget_id"] is not None
    assert raised["data"]["action_id"] == action["id"]


async def test_a_retry_frees_the_action_and_actions_apply_in_order(client, ingest, alice):
    key, _ = await linked_key(ingest, alice)
    limit = await client.post(
        upstream_path(key.id, "apply-limit"), headers=alice.headers, json={"amount_usd": 12.5, "reset": "weekly"}
    )
    assert limit.status_code == 202, limit.text
    enable = await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)
    assert enable.status_code == 202, enable.text
    first, second = limit.json()["id"], enable.json()["id"]
    waiting = await claim(ingest, second)
    assert (waiting["ready"], waiting["status"]) == (False, "pending")  # the limit goes first
    claimed = await claim(ingest, first)
    assert (claimed["limit_usd"], claimed["limit_reset"]) == (12.5, "weekly")
    assert (await report(ingest, first, outcome="retry", error="OpenRouter rate limit (429)"))["status"] == "pending"
    view = await upstream(client, alice, key.id)
    assert view["actions"][-1]["error"] == "OpenRouter rate limit (429)"
    again = await claim(ingest, first)
    assert (again["ready"], again["attempts"]) == (True, 2)
    await report(ingest, first, outcome="done", disabled=False, limit_usd=12.5, limit_reset="weekly")
    assert (await claim(ingest, second))["ready"] is True
    view = await upstream(client, alice, key.id)
    assert (view["limit_usd"], view["limit_reset"]) == (12.5, "weekly")
    assert [a["kind"] for a in view["actions"]] == ["enable", "set_limit"]


async def test_a_key_without_an_account_is_refused_at_once_by_every_action(client, ingest, alice):
    """enable-upstream, apply-limit and disable-upstream alike: the same 409 at once, nothing recorded."""
    key = Key(ingest, alice, label="sk-or-v1-nol...002")
    await key.sync(moment(monday() + timedelta(days=1), 9), "1")
    for what, body in (
        ("enable-upstream", None),
        ("apply-limit", {"amount_usd": 5, "reset": "monthly"}),
        ("apply-limit", {"amount_usd": 5, "reset": None, "include_byok_in_limit": True}),
        ("disable-upstream", None),
    ):
        r = await client.post(upstream_path(key.id, what), headers=alice.headers, json=body)
        problem = assert_problem(r, 409)
        assert problem["type"].endswith("/key-not-linked"), what
        assert "management key" in problem["detail"]
        assert "{" not in problem["detail"]
    view = await upstream(client, alice, key.id)
    assert (view["linked"], view["disabled"], view["actions"]) == (False, None, [])


async def test_a_link_lost_before_the_claim_fails_the_action_with_a_reason(client, ingest, alice, db_connection):
    """The claim's check stays as the safety net: a key linked when asked and no longer when the worker claims it."""
    key, _ = await linked_key(ingest, alice, hash_="c" * 64)
    r = await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)
    assert r.status_code == 202, r.text
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text("UPDATE usage.key_links SET management_key_id = NULL, api_key_hash = NULL WHERE key_id = :k"),
            {"k": key.id},
        )
    claimed = await claim(ingest, r.json()["id"])
    assert (claimed["ready"], claimed["status"]) == (False, "failed")
    view = await upstream(client, alice, key.id)
    assert (view["linked"], view["disabled"]) == (False, None)
    assert view["actions"][0]["status"] == "failed"
    assert view["actions"][0]["error"] == key_actions.NOT_LINKED
    assert await events(db_connection, alice, "key.disabled") == []
    await claim(ingest, str(uuid.uuid4()), expect=404)


async def test_a_limit_carries_its_byok_setting_to_the_worker_and_the_account_row(client, ingest, alice, db_connection):
    key, _ = await linked_key(ingest, alice, hash_="d" * 64)
    body = {"amount_usd": 20, "reset": "monthly", "include_byok_in_limit": True}
    r = await client.post(upstream_path(key.id, "apply-limit"), headers=alice.headers, json=body)
    assert r.status_code == 202, r.text
    action = r.json()
    assert action["include_byok_in_limit"] is True
    assert action["reason"] == "limit set to 20 USD (monthly, BYOK included) by a user"
    claimed = await claim(ingest, action["id"])
    assert (claimed["ready"], claimed["include_byok_in_limit"]) == (True, True)
    await report(ingest, action["id"], outcome="done", disabled=False, limit_usd=20, limit_reset="monthly")
    async with savepoint(db_connection) as conn:
        row = await conn.execute(
            text("SELECT include_byok_in_limit FROM usage.account_keys WHERE hash = :h"), {"h": "d" * 64}
        )
        assert row.scalar_one() is True
    # Absent: none sent, and the account row keeps what the key list said.
    r = await client.post(
        upstream_path(key.id, "apply-limit"), headers=alice.headers, json={"amount_usd": 5, "reset": None}
    )
    assert (r.json()["include_byok_in_limit"], r.json()["reason"]) == (None, "limit set to 5 USD (no reset) by a user")
    claimed = await claim(ingest, r.json()["id"])
    assert claimed["include_byok_in_limit"] is None
    off = {"amount_usd": 5, "reset": None, "include_byok_in_limit": False}
    r = await client.post(upstream_path(key.id, "apply-limit"), headers=alice.headers, json=off)
    assert (r.json()["include_byok_in_limit"], r.json()["reason"]) == (
        False,
        "limit set to 5 USD (no reset, BYOK not included) by a user",
    )


async def test_open_actions_are_listed_for_the_sweep(client, ingest, alice, clock):
    key, _ = await linked_key(ingest, alice)
    r = await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)
    action = r.json()["id"]
    r = await ingest.client.get("/internal/key-actions/open", headers=ingest.headers)
    assert action not in r.json()["ids"]  # just recorded: its job is on its way
    clock.advance(minutes=2)
    r = await ingest.client.get("/internal/key-actions/open", headers=ingest.headers)
    assert action in r.json()["ids"]
    await claim(ingest, action)
    r = await ingest.client.get("/internal/key-actions/open", headers=ingest.headers)
    assert action not in r.json()["ids"]  # leased


# --- the public routes -------------------------------------------------------------------------------------


BAD_LIMITS: list[dict[str, Any]] = [
    {},
    {"amount_usd": 0, "reset": None},
    {"amount_usd": -1, "reset": None},
    {"amount_usd": "NaN", "reset": None},
    {"amount_usd": "1e10", "reset": None},
    {"amount_usd": 5, "reset": "yearly"},
    {"amount_usd": 5, "reset": None, "surprise": 1},
    {"amount_usd": 5, "reset": None, "include_byok_in_limit": "maybe"},
    {"amount_usd": 5, "reset": None, "include_byok_in_limit": 2},
]


@pytest.mark.parametrize("body", BAD_LIMITS)
async def test_bad_limits_are_a_422(client, ingest, alice, body):
    key, _ = await linked_key(ingest, alice)
    assert_problem(await client.post(upstream_path(key.id, "apply-limit"), headers=alice.headers, json=body), 422)


async def test_other_workspaces_keys_and_unknown_keys_are_404(client, ingest, alice, bob):
    key, _ = await linked_key(ingest, alice)
    for tenant, key_id in ((bob, key.id), (alice, str(uuid.uuid4()))):
        for method, what, body in (
            ("POST", "apply-limit", {"amount_usd": 1, "reset": None}),
            ("POST", "enable-upstream", None),
            ("POST", "disable-upstream", None),
            ("POST", "disable-upstream", {"reason": "leaked"}),
            ("GET", "upstream", None),
            ("PUT", "kill-switch", {"anomaly_score": 5}),
        ):
            r = await client.request(method, upstream_path(key_id, what), headers=tenant.headers, json=body)
            assert assert_problem(r, 404)["type"].endswith("/key-not-found")


async def test_writes_are_an_admins(client, ingest, alice, keyring):
    key, _ = await linked_key(ingest, alice)
    member = bearer(keyring.access_token(alice.user_id, alice.workspace_id, role="member"))
    r = await client.post(upstream_path(key.id, "enable-upstream"), headers=member)
    assert_problem(r, 403)
    for role in ("member", "viewer"):
        lower = bearer(keyring.access_token(alice.user_id, alice.workspace_id, role=role))
        assert_problem(await client.post(upstream_path(key.id, "disable-upstream"), headers=lower), 403)
    # An API token (its JWT carries `tid` and the token's scopes) needs `keys:write`.
    reader = {"tid": str(uuid.uuid4()), "scope": "keys:read usage:read"}
    r = await client.post(
        upstream_path(key.id, "disable-upstream"),
        headers=bearer(keyring.access_token(alice.user_id, alice.workspace_id, **reader)),
    )
    assert assert_problem(r, 403)["type"].endswith("/insufficient-scope")
    assert (await upstream(client, alice, key.id))["actions"] == []
    r = await client.get(
        upstream_path(key.id), headers=bearer(keyring.access_token(alice.user_id, alice.workspace_id, role="viewer"))
    )
    assert r.status_code == 200


# --- the anomaly threshold -----------------------------------------------------------------------------------


async def test_an_anomaly_disables_the_key_only_past_its_threshold(client, ingest, alice, db_connection):
    key, _ = await linked_key(ingest, alice)
    assert (await upstream(client, alice, key.id))["anomaly_score"] is None  # off by default
    key_id, workspace = uuid.UUID(key.id), uuid.UUID(alice.workspace_id)

    async def anomaly(score: str, day: str) -> uuid.UUID | None:
        async with (
            savepoint(db_connection) as conn,
            AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session,
        ):
            # The anomaly detection's call, in its own transaction.
            action = await key_actions.disable_on_anomaly(
                session,
                workspace_id=workspace,
                key_id=key_id,
                score=Decimal(score),
                evidence={"kind": "spend_spike", "day": day},
                dedup_key=f"{key_id}:{day}:spend_spike",
            )
            await session.commit()
            return action

    assert await anomaly("50", "2026-01-01") is None
    r = await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 8})
    assert r.status_code == 200, r.text
    assert r.json()["anomaly_score"] == 8
    assert_problem(
        await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 0}), 422
    )
    assert await anomaly("7.9", "2026-01-02") is None
    assert await anomaly("8", "2026-01-03") is not None
    assert await anomaly("9", "2026-01-03") is None  # the same anomaly again
    [action] = (await upstream(client, alice, key.id))["actions"]
    assert (action["source"], action["evidence"]["score"], action["evidence"]["kind"]) == (
        "anomaly",
        "8",
        "spend_spike",
    )
    r = await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": None})
    assert r.json()["anomaly_score"] is None
    assert await anomaly("100", "2026-01-04") is None


@dataclass(frozen=True)
class Found:
    """An anomaly as the detection answers it."""

    workspace_id: uuid.UUID
    key_id: uuid.UUID
    day: date
    kind: str
    score: float
    evidence: dict[str, Any]


async def test_an_evaluation_s_anomalies_disable_only_keys_with_the_switch_on(client, ingest, alice, db_connection):
    armed, _ = await linked_key(ingest, alice)
    other = Key(ingest, alice, label="sk-or-v1-oth...003")
    await other.sync(moment(monday() + timedelta(days=1), 9), "1")
    await client.put(upstream_path(armed.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 6})
    workspace, day = uuid.UUID(alice.workspace_id), monday()
    found = [
        Found(workspace, uuid.UUID(armed.id), day, "spend_spike", 12.5, {"spend_usd": "22.5"}),
        Found(workspace, uuid.UUID(armed.id), day, "new_model", 2.0, {}),
        Found(workspace, uuid.UUID(other.id), day, "spend_spike", 50.0, {}),
    ]
    async with (
        savepoint(db_connection) as conn,
        AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session,
    ):
        recorded = await key_actions.disable_on_anomalies(session, found)
        again = await key_actions.disable_on_anomalies(session, found)
        await session.commit()
    assert (len(recorded), again) == (1, [])
    [action] = (await upstream(client, alice, armed.id))["actions"]
    assert action["evidence"] == {"spend_usd": "22.5", "kind": "spend_spike", "day": day.isoformat(), "score": "12.5"}
    assert (await upstream(client, alice, other.id))["actions"] == []


async def test_a_workspace_erasure_takes_its_actions_and_switches(
    client, ingest, alice, service_headers, db_connection
):
    key, _ = await linked_key(ingest, alice)
    await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 3})
    action = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    r = await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers())
    assert r.status_code == 204
    async with savepoint(db_connection) as conn:
        for table in ("key_actions", "key_kill_switches"):
            left = await conn.execute(
                text(f"SELECT count(*) FROM usage.{table} WHERE workspace_id = :w"),  # noqa: S608 - a constant
                {"w": alice.workspace_id},
            )
            assert left.scalar_one() == 0, table
    await claim(ingest, action, expect=404)


async def test_a_key_disabled_at_openrouter_is_not_called_invalid(client, ingest, alice, db_connection):
    key, _ = await linked_key(ingest, alice, hash_="c" * 64)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    await key.sync(moment(monday() + timedelta(days=1), 12), "20")
    [action] = (await upstream(client, alice, key.id))["actions"]
    await claim(ingest, action["id"])
    await report(ingest, action["id"], outcome="done", disabled=True)
    # Its next sync gets OpenRouter's 401: not `key.invalid` (`key.disabled` said why).
    assert await key_status(ingest, status_item(key, "invalid", moment(monday() + timedelta(days=1), 13))) == 0
    assert await events(db_connection, alice, "key.invalid") == []
    # Once enabled again (the account row says so), a 401 is a revoked key's, and says so.
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    await report(ingest, enable, outcome="done", disabled=False)
    assert await key_status(ingest, status_item(key, "invalid", moment(monday() + timedelta(days=1), 14))) == 1
    assert len(await events(db_connection, alice, "key.invalid")) == 1


async def test_arming_an_exceeded_budget_disables_at_once_and_once(client, ingest, alice):
    key, _ = await linked_key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id})
    await key.sync(moment(monday() + timedelta(days=1), 12), "15")
    assert (await upstream(client, alice, key.id))["actions"] == []  # exceeded, but the switch was off
    path = f"/api/v1/budgets/{budget['id']}"
    for _ in range(2):
        r = await client.patch(path, headers=alice.headers, json={"disable_key_on_exceed": True})
        assert r.status_code == 200, r.text
    [action] = (await upstream(client, alice, key.id))["actions"]
    assert (action["kind"], action["budget_id"]) == ("disable", budget["id"])


async def test_a_fresh_spike_past_the_threshold_disables_the_key(client, ingest, alice):
    """The anomaly detection at ingestion feeds the kill switch: four weeks of about a dollar a day, then 22.5."""
    key, _ = await linked_key(ingest, alice)
    r = await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 6})
    assert r.status_code == 200, r.text
    spike_day = today() - timedelta(days=2)
    for n in range(29, 0, -1):  # oldest first, one sync a day
        day = spike_day - timedelta(days=n)
        await key.sync(moment(day, 12), str(Decimal("1.00") + Decimal(n % 3) / 10))
    assert (await upstream(client, alice, key.id))["actions"] == []  # ordinary days disable nothing
    await key.sync(moment(spike_day, 23, 30), "22.5")
    await key.sync(moment(spike_day + timedelta(days=1), 6), "0")

    [action] = (await upstream(client, alice, key.id))["actions"]
    assert (action["kind"], action["source"]) == ("disable", "anomaly")
    assert action["evidence"]["day"] == spike_day.isoformat()
    assert Decimal(action["evidence"]["score"]) >= 6


async def test_one_leak_disables_the_key_once(client, ingest, alice, db_connection):
    """A leak trips several anomaly kinds on one day, and a budget: one disable and one `key.disabled`, while a
    disable is open or the key is disabled; a user's enable lets a later cause disable it again."""
    key, _ = await linked_key(ingest, alice, hash_="d" * 64)
    await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 6})
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    workspace, key_id, day = uuid.UUID(alice.workspace_id), uuid.UUID(key.id), monday()

    async def evaluate(on: date, *kinds: str) -> list[uuid.UUID]:
        found = [Found(workspace, key_id, on, kind, 20.0, {}) for kind in kinds]
        async with (
            savepoint(db_connection) as conn,
            AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session,
        ):
            recorded = await key_actions.disable_on_anomalies(session, found)
            await session.commit()
        return recorded

    assert len(await evaluate(day, "spend_spike", "dormant_wakeup", "new_model")) == 1
    assert await evaluate(day + timedelta(days=1), "spend_spike") == []  # a disable is open
    await key.sync(moment(day + timedelta(days=1), 12), "20")  # the budget is exceeded too
    actions = (await upstream(client, alice, key.id))["actions"]
    [action] = [a for a in actions if a["status"] != "skipped"]
    assert (action["source"], action["status"]) == ("anomaly", "pending")
    # The causes that came while it was open are in the key's trail, each marked skipped, with why.
    skipped = [a for a in actions if a["status"] == "skipped"]
    assert sorted(a["source"] for a in skipped) == ["anomaly", "budget"]
    assert all("already under way" in a["error"] and a["completed_at"] for a in skipped)
    await claim(ingest, action["id"])
    await report(ingest, action["id"], outcome="done", disabled=True)
    assert await evaluate(day + timedelta(days=2), "new_model") == []  # disabled at OpenRouter already
    assert len(await events(db_connection, alice, "key.disabled")) == 1
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    await report(ingest, enable, outcome="done", disabled=False)
    assert len(await evaluate(day + timedelta(days=3), "spend_spike")) == 1


async def test_only_the_current_claim_s_report_counts(client, ingest, alice, db_connection, clock):
    """A try that outlived its lease (the action claimed again meanwhile) reports nothing that counts."""
    key, _ = await linked_key(ingest, alice, hash_="e" * 64)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    await key.sync(moment(monday() + timedelta(days=1), 12), "20")
    [action] = (await upstream(client, alice, key.id))["actions"]
    first = await claim(ingest, action["id"])
    clock.advance(seconds=61)  # its lease ran out
    second = await claim(ingest, action["id"])
    assert (first["attempts"], second["attempts"], second["ready"]) == (1, 2, True)
    stale = await report(ingest, action["id"], outcome="done", disabled=True, attempt=1)
    assert (stale["status"], stale["attempts"]) == ("running", 2)
    assert await events(db_connection, alice, "key.disabled") == []
    assert (await report(ingest, action["id"], outcome="failed", error="late", attempt=1))["status"] == "running"
    assert (await report(ingest, action["id"], outcome="done", disabled=True, attempt=2))["status"] == "done"
    assert len(await events(db_connection, alice, "key.disabled")) == 1
    # A report without its claim's number is refused.
    r = await ingest.call("POST", f"/internal/key-actions/{action['id']}/result", {"outcome": "done"})
    assert r.status_code == 422


async def test_a_key_is_not_called_invalid_while_its_disable_is_under_way(client, ingest, alice, db_connection):
    """A sync's 401 between the worker's PATCH and its report is the kill switch's, not a revoked key's."""
    key, _ = await linked_key(ingest, alice, hash_="f" * 64)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    tuesday = monday() + timedelta(days=1)
    await key.sync(moment(tuesday, 12), "20")
    [action] = (await upstream(client, alice, key.id))["actions"]
    await claim(ingest, action["id"])
    assert await key_status(ingest, status_item(key, "invalid", moment(tuesday, 13))) == 0
    # A retry (keys away for the audit after the PATCH went through) leaves it pending, and still under way.
    await report(ingest, action["id"], outcome="retry", error="keys unavailable (503)")
    assert await key_status(ingest, status_item(key, "invalid", moment(tuesday, 14))) == 0
    assert await events(db_connection, alice, "key.invalid") == []
    # A disable that failed for good leaves a 401 a revoked key's again.
    await claim(ingest, action["id"])
    await report(ingest, action["id"], outcome="failed", error="refused")
    assert await key_status(ingest, status_item(key, "invalid", moment(tuesday, 15))) == 1


async def test_two_transactions_asking_at_once_record_one_disable(committed_ingest, committed_client, alice, db_engine):
    """Two rules' transactions (an ingestion and a budget's change) ask to disable one key at once: the second
    waits for the first to commit, then finds its disable open. One PATCH, one `key.disabled`."""
    key, _ = await linked_key(committed_ingest, alice)
    maker = create_sessionmaker(db_engine)
    workspace, key_id = uuid.UUID(alice.workspace_id), uuid.UUID(key.id)

    async def disable(cause: str) -> uuid.UUID | None:
        async with maker() as session, session.begin():
            action = await key_actions.request_disable(
                session, workspace_id=workspace, key_id=key_id, reason=cause, source="budget", dedup_key=cause
            )
            await asyncio.sleep(0.3)  # both have asked before either commits
            return action

    recorded = await asyncio.wait_for(asyncio.gather(disable("budget:a"), disable("budget:b")), 10)
    assert sum(action is not None for action in recorded) == 1
    actions = (await upstream(committed_client, alice, key.id))["actions"]
    assert sorted((a["kind"], a["status"]) for a in actions) == [("disable", "pending"), ("disable", "skipped")]


async def anomaly_found(
    db_connection: Any, workspace: uuid.UUID, key_id: uuid.UUID, on: date, kind: str, score: float
) -> list[uuid.UUID]:
    """The key's anomaly of `kind` on `on` handed to the kill switch, committed; the disables it recorded."""
    async with (
        savepoint(db_connection) as conn,
        AsyncSession(bind=conn, join_transaction_mode="create_savepoint") as session,
    ):
        recorded = await key_actions.disable_on_anomalies(session, [Found(workspace, key_id, on, kind, score, {})])
        await session.commit()
    return recorded


async def test_a_cause_that_fired_while_the_key_was_disabled_does_not_fire_again_after_an_enable(
    client, ingest, alice, db_connection
):
    """An anomaly of a key and day is found again when its score grows or another kind shows up that day. Found
    while a budget's disable was open, it was skipped; after the user's enable it must not disable the key again
    (the user's enable wins over a cause that already fired). A budget fires once per period anyway."""
    key, _ = await linked_key(ingest, alice, hash_="9" * 64)
    await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 6})
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    evaluate = partial(anomaly_found, db_connection, uuid.UUID(alice.workspace_id), uuid.UUID(key.id))
    tuesday = monday() + timedelta(days=1)
    await key.sync(moment(tuesday, 12), "20")  # the budget is exceeded: its disable is open
    assert await evaluate(tuesday, "spend_spike", 8.0) == []  # skipped
    [budget_action] = [a for a in (await upstream(client, alice, key.id))["actions"] if a["status"] == "pending"]
    await claim(ingest, budget_action["id"])
    await report(ingest, budget_action["id"], outcome="done", disabled=True)
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    await report(ingest, enable, outcome="done", disabled=False)

    # The same day's anomaly again, scored higher, and another kind of it: the user's enable stands.
    assert await evaluate(tuesday, "spend_spike", 12.0) == []
    assert await evaluate(tuesday, "new_model", 9.0) == []
    await key.sync(moment(tuesday, 13), "30")  # the budget's period is the same: no second exceeded
    actions = (await upstream(client, alice, key.id))["actions"]
    assert [a["status"] for a in actions if a["kind"] == "disable"] == ["skipped", "done"]
    [skipped] = [a for a in actions if a["status"] == "skipped"]
    assert (skipped["source"], skipped["evidence"]["day"]) == ("anomaly", tuesday.isoformat())
    late = await claim(ingest, skipped["id"])  # a skipped action is never sent
    assert (late["ready"], late["status"]) == (False, "skipped")
    # A later cause (the next day's anomaly) may disable it again.
    assert len(await evaluate(tuesday + timedelta(days=1), "spend_spike", 8.0)) == 1


async def test_causes_skipped_behind_a_disable_that_failed_may_disable_the_key(client, ingest, alice, db_connection):
    """A disable that failed never reached OpenRouter: a cause skipped behind it, found again, disables the key."""
    key, _ = await linked_key(ingest, alice, hash_="8" * 64)
    await client.put(upstream_path(key.id, "kill-switch"), headers=alice.headers, json={"anomaly_score": 6})
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    evaluate = partial(anomaly_found, db_connection, uuid.UUID(alice.workspace_id), uuid.UUID(key.id))
    tuesday = monday() + timedelta(days=1)
    await key.sync(moment(tuesday, 12), "20")  # the budget's disable is open
    assert await evaluate(tuesday, "spend_spike", 8.0) == []  # skipped behind it
    [budget_action] = [a for a in (await upstream(client, alice, key.id))["actions"] if a["status"] == "pending"]
    await claim(ingest, budget_action["id"])
    await report(ingest, budget_action["id"], outcome="failed", error="management key refused (401)")

    [again] = await evaluate(tuesday, "spend_spike", 9.0)
    actions = {a["id"]: a for a in (await upstream(client, alice, key.id))["actions"]}
    assert actions[str(again)]["status"] == "pending"
    [skipped] = [a for a in actions.values() if a["status"] == "skipped"]
    assert skipped["error"].endswith("so this cause may disable the key again")


# --- a user's disable (the panic button) ---------------------------------------------------------------------


async def disable(client: httpx.AsyncClient, tenant: Tenant, key_id: str, body: Any = None) -> httpx.Response:
    return await client.post(upstream_path(key_id, "disable-upstream"), headers=tenant.headers, json=body)


async def test_a_user_disables_a_key_it_is_announced_and_a_second_ask_is_a_409(client, ingest, alice, db_connection):
    key, account = await linked_key(ingest, alice, hash_="1" * 64)
    r = await disable(client, alice, key.id, {"reason": "  leaked in a public repo  "})
    assert r.status_code == 202, r.text
    action = r.json()
    assert (action["kind"], action["status"], action["source"]) == ("disable", "pending", "user")
    assert (action["requested_by"], action["budget_id"]) == (alice.user_id, None)
    assert action["reason"] == "disabled at OpenRouter by a user: leaked in a public repo"
    claimed = await claim(ingest, action["id"])
    assert (claimed["ready"], claimed["kind"], claimed["source"]) == (True, "disable", "user")
    assert (claimed["requested_by"], claimed["api_key_hash"], claimed["management_key_id"]) == (
        alice.user_id,
        "1" * 64,
        account,
    )
    assert claimed["reason"] == action["reason"]  # what the worker writes into the key's audit trail
    await report(ingest, action["id"], outcome="done", disabled=True)
    view = await upstream(client, alice, key.id)
    assert (view["disabled"], view["actions"][0]["status"]) == (True, "done")
    [raised] = await events(db_connection, alice, "key.disabled")
    data = raised["data"]
    assert (data["key_id"], data["source"], data["requested_by"], data["action_id"]) == (
        key.id,
        "user",
        alice.user_id,
        action["id"],
    )
    assert (data["reason"], data["budget_id"], data["label"]) == (action["reason"], None, LABEL)
    # Disabled at OpenRouter already: said, not recorded.
    problem = assert_problem(await disable(client, alice, key.id), 409)
    assert problem["type"].endswith("/key-already-disabled")
    assert f"POST /api/v1/keys/{key.id}/enable-upstream" in problem["detail"]  # the key's own id, no placeholder
    assert "{" not in problem["detail"]
    assert len((await upstream(client, alice, key.id))["actions"]) == 1
    # Enabled again, it can be disabled again.
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    await report(ingest, enable, outcome="done", disabled=False)
    r = await disable(client, alice, key.id)
    assert r.status_code == 202, r.text
    assert r.json()["reason"] == "disabled at OpenRouter by a user"  # no body: the default reason


async def test_a_disable_under_way_is_a_409_and_a_rule_s_disable_after_a_user_s_is_skipped(
    client, ingest, alice, db_connection
):
    key, _ = await linked_key(ingest, alice)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, disable_key_on_exceed=True)
    first = await disable(client, alice, key.id, {"reason": "leak"})
    assert first.status_code == 202, first.text
    problem = assert_problem(await disable(client, alice, key.id, {"reason": "leak"}), 409)
    assert problem["type"].endswith("/key-disable-under-way")
    assert f"GET /api/v1/keys/{key.id}/upstream" in problem["detail"]
    assert "{" not in problem["detail"]
    await key.sync(moment(monday() + timedelta(days=1), 12), "20")  # the budget's kill switch comes after it
    actions = (await upstream(client, alice, key.id))["actions"]
    assert sorted((a["source"], a["status"]) for a in actions) == [("budget", "skipped"), ("user", "pending")]
    # And a user's ask while a rule's disable is open is a 409 too.
    await claim(ingest, first.json()["id"])
    await report(ingest, first.json()["id"], outcome="failed", error="refused")
    other, _ = await linked_key(ingest, alice, hash_="2" * 64, label="sk-or-v1-oth...005")
    await create_budget(client, alice, scope={"type": "key", "id": other.id}, disable_key_on_exceed=True)
    await other.sync(moment(monday() + timedelta(days=1), 12), "20")
    [rule] = (await upstream(client, alice, other.id))["actions"]
    assert (rule["source"], rule["status"]) == ("budget", "pending")
    assert assert_problem(await disable(client, alice, other.id), 409)["type"].endswith("/key-disable-under-way")
    assert len(await events(db_connection, alice, "key.disabled")) == 0


async def test_a_key_without_an_account_cannot_be_disabled_from_here(client, ingest, alice):
    key = Key(ingest, alice, label="sk-or-v1-nol...004")
    await key.sync(moment(monday() + timedelta(days=1), 9), "1")
    problem = assert_problem(await disable(client, alice, key.id), 409)
    assert problem["type"].endswith("/key-not-linked")
    assert "openrouter.ai" in problem["detail"]
    assert (await upstream(client, alice, key.id))["actions"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"reason": "x" * 201},
        {"reason": "line one\nline two"},
        {"reason": "nul\x00"},
        {"reason": 5},
        {"reason": "leak", "surprise": 1},
        ["leak"],
    ],
)
async def test_a_bad_reason_is_a_422(client, ingest, alice, body):
    key, _ = await linked_key(ingest, alice)
    assert_problem(await disable(client, alice, key.id, body), 422)
    assert (await upstream(client, alice, key.id))["actions"] == []


async def test_a_long_reason_is_kept_whole_and_a_blank_one_is_the_default(client, ingest, alice):
    key, _ = await linked_key(ingest, alice)
    r = await disable(client, alice, key.id, {"reason": "y" * 200})
    assert r.status_code == 202, r.text
    assert r.json()["reason"].endswith("y" * 200)
    other, _ = await linked_key(ingest, alice, hash_="3" * 64, label="sk-or-v1-oth...006")
    r = await disable(client, alice, other.id, {"reason": "   "})
    assert (r.status_code, r.json()["reason"]) == (202, "disabled at OpenRouter by a user")


async def test_a_user_s_disable_supersedes_a_pending_enable_and_follows_a_running_one(client, ingest, alice):
    key, _ = await linked_key(ingest, alice, hash_="4" * 64)
    killed = (await disable(client, alice, key.id)).json()["id"]
    await claim(ingest, killed)
    await report(ingest, killed, outcome="done", disabled=True)
    # An enable asked, not yet sent; then the leak is seen again: the enable is never sent.
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    r = await disable(client, alice, key.id, {"reason": "still leaking"})
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["evidence"] == {"superseded_enables": [enable]}
    late = await claim(ingest, enable)
    assert (late["ready"], late["status"]) == (False, "skipped")
    assert (await claim(ingest, again["id"]))["ready"] is True  # nothing earlier is open
    await report(ingest, again["id"], outcome="done", disabled=True)
    [skipped] = [a for a in (await upstream(client, alice, key.id))["actions"] if a["kind"] == "enable"]
    assert skipped["status"] == "skipped"
    assert "superseded" in skipped["error"]
    # An enable already claimed (perhaps sent) finishes first; the disable follows it.
    enable = (await client.post(upstream_path(key.id, "enable-upstream"), headers=alice.headers)).json()["id"]
    await claim(ingest, enable)
    r = await disable(client, alice, key.id)
    assert r.status_code == 202, r.text
    assert r.json()["evidence"] == {}
    waiting = await claim(ingest, r.json()["id"])
    assert (waiting["ready"], waiting["status"]) == (False, "pending")
    await report(ingest, enable, outcome="done", disabled=False)
    assert (await claim(ingest, r.json()["id"]))["ready"] is True
    await report(ingest, r.json()["id"], outcome="done", disabled=True)
    assert (await upstream(client, alice, key.id))["disabled"] is True


async def test_a_user_s_disable_and_a_rule_s_at_once_record_one(committed_ingest, committed_client, alice, db_engine):
    """The user's ask takes the key's disable lock as a rule's does: whichever commits first is the disable, the
    other a 409 (the user's) or `skipped` (the rule's)."""
    key, _ = await linked_key(committed_ingest, alice)
    maker = create_sessionmaker(db_engine)
    workspace, key_id = uuid.UUID(alice.workspace_id), uuid.UUID(key.id)

    async def by_rule() -> uuid.UUID | None:
        async with maker() as session, session.begin():
            action = await key_actions.request_disable(
                session, workspace_id=workspace, key_id=key_id, reason="r", source="budget", dedup_key="budget:x"
            )
            await asyncio.sleep(0.3)  # the user asks before this commits
            return action

    async def by_user() -> int:
        await asyncio.sleep(0.1)
        return (await disable(committed_client, alice, key.id)).status_code

    rule, status = await asyncio.wait_for(asyncio.gather(by_rule(), by_user()), 10)
    assert (rule is not None, status) == (True, 409)
    actions = (await upstream(committed_client, alice, key.id))["actions"]
    assert [(a["source"], a["status"]) for a in actions] == [("budget", "pending")]
