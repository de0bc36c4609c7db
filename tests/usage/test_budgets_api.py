"""The budgets API: create, list, read, change, delete; input rules; other workspaces; API-token scopes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.http import assert_problem, bearer
from tests.usage.alerting import add_channel, create_budget


async def test_a_budget_is_created_listed_read_changed_and_deleted(client, alice):
    created = await create_budget(client, alice, name="  team  ", amount_usd="12.3456789012")
    assert created["name"] == "team"
    assert created["scope"] == {"type": "workspace", "id": None}
    assert (created["thresholds"], created["include_byok"], created["channel_ids"]) == ([50, 80, 100], False, [])
    assert created["amount_usd"] == 12.3456789012
    assert created["spend_usd"] == 0
    assert (created["state"], created["provisional"], created["projected_cross_at"]) == ("ok", False, None)
    assert created["forecast_usd"] in (0, None)  # None in a period's first hour
    second = await create_budget(client, alice, name="second", period="daily")
    listed = (await client.get("/api/v1/budgets", headers=alice.headers, params={"per_page": 1})).json()
    assert (listed["total"], listed["page"], listed["per_page"]) == (2, 1, 1)
    assert [b["id"] for b in listed["items"]] == [second["id"]]  # newest first
    path = f"/api/v1/budgets/{created['id']}"
    r = await client.patch(path, headers=alice.headers, json={"name": "renamed", "thresholds": [25], "period": None})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["name"], changed["thresholds"], changed["period"]) == ("renamed", [25], "weekly")
    assert (await client.get(path, headers=alice.headers)).json()["name"] == "renamed"
    assert (await client.delete(path, headers=alice.headers)).status_code == 204
    assert assert_problem(await client.get(path, headers=alice.headers), 404)["type"].endswith("/budget-not-found")
    assert_problem(await client.delete(path, headers=alice.headers), 404)


BAD_BODIES: list[dict[str, Any]] = [
    {"amount_usd": 0},
    {"amount_usd": -1},
    {"amount_usd": "1e10"},
    {"amount_usd": "NaN"},
    {"amount_usd": "0.00000000001"},
    {"name": ""},
    {"name": "x" * 101},
    {"name": "bell\x07"},
    {"period": "yearly"},
    {"thresholds": []},
    {"thresholds": [0]},
    {"thresholds": [1001]},
    {"thresholds": [80, 50]},
    {"thresholds": [50, 50]},
    {"thresholds": list(range(1, 12))},
    {"scope": {"type": "key"}},
    {"scope": {"type": "account"}},
    {"scope": {"type": "workspace", "id": str(uuid.uuid4())}},
    {"scope": {"type": "team"}},
    {"include_byok": "yes"},
    {"channel_ids": ["not-a-uuid"]},
    {"channel_ids": [str(uuid.uuid4())] * 2},
    {"surprise": 1},
]


@pytest.mark.parametrize("change", BAD_BODIES)
async def test_bad_input_is_a_422(client, alice, change):
    body = {"name": "b", "scope": {"type": "workspace"}, "amount_usd": 10, "period": "weekly", **change}
    assert_problem(await client.post("/api/v1/budgets", headers=alice.headers, json=body), 422)


async def test_changes_are_checked_too_and_the_scope_is_fixed(client, alice):
    budget = await create_budget(client, alice)
    path = f"/api/v1/budgets/{budget['id']}"
    for body in ({"amount_usd": 0}, {"thresholds": [90, 10]}, {"scope": {"type": "workspace"}}, {"name": ""}):
        assert_problem(await client.patch(path, headers=alice.headers, json=body), 422)


async def test_channels_must_be_the_workspaces_own(client, alice, bob):
    mine = await add_channel(client, alice)
    theirs = await add_channel(client, bob)
    for channel_ids in ([theirs], [mine, str(uuid.uuid4())]):
        body = {
            "name": "b",
            "scope": {"type": "workspace"},
            "amount_usd": 1,
            "period": "daily",
            "channel_ids": channel_ids,
        }
        problem = assert_problem(await client.post("/api/v1/budgets", headers=alice.headers, json=body), 422)
        assert problem["type"].endswith("/unknown-channels")
        assert problem["errors"][0]["loc"] == ["body", "channel_ids"]
    budget = await create_budget(client, alice, channel_ids=[mine])
    r = await client.patch(f"/api/v1/budgets/{budget['id']}", headers=alice.headers, json={"channel_ids": [theirs]})
    assert_problem(r, 422)


async def test_another_workspaces_budget_is_a_404_everywhere(client, alice, bob):
    budget = await create_budget(client, alice)
    path = f"/api/v1/budgets/{budget['id']}"
    assert_problem(await client.get(path, headers=bob.headers), 404)
    assert_problem(await client.patch(path, headers=bob.headers, json={"name": "mine"}), 404)
    assert_problem(await client.delete(path, headers=bob.headers), 404)
    assert (await client.get("/api/v1/budgets", headers=bob.headers)).json()["total"] == 0
    assert (await client.get(path, headers=alice.headers)).json()["name"] == "budget"


async def test_api_tokens_need_alerts_read_to_read_and_alerts_write_to_change(client, alice, keyring):
    def token(*scopes: str) -> dict[str, str]:
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    body = {"name": "b", "scope": {"type": "workspace"}, "amount_usd": 1, "period": "daily"}
    problem = assert_problem(await client.get("/api/v1/budgets", headers=token("usage:read")), 403)
    assert "alerts:read" in problem["detail"]
    assert (await client.get("/api/v1/budgets", headers=token("alerts:read"))).status_code == 200
    problem = assert_problem(await client.post("/api/v1/budgets", headers=token("alerts:read"), json=body), 403)
    assert "alerts:write" in problem["detail"]
    assert (await client.post("/api/v1/budgets", headers=token("alerts:write"), json=body)).status_code == 201
    for path in ("/api/v1/budgets", "/api/v1/alert-rules"):
        assert_problem(await client.get(path), 401)
