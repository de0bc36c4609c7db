"""`GET /api/v1/insights/anomalies` (DESIGN §13): the caller's workspace only, filtered by day range and key, bad
input a 4xx problem (API tokens need `usage:read`: test_hygiene.py checks both insights); a workspace's erasure
takes its anomalies."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

from sqlalchemy import text

from tests.support.db import savepoint
from tests.support.http import assert_problem
from tests.usage.conftest import days_ago, window
from tests.usage.histories import generate, ingest_histories, plant_new_model, plant_spike

PATH = "/api/v1/insights/anomalies"


async def spiky_keys(ingest, tenant, seed: int = 3):
    """Two keys: one with spikes 1 and 20 days ago, one with a new model 5 days ago."""
    rng = random.Random(seed)
    first, last = days_ago(70), days_ago(1)
    spiky = generate(rng, first, last)
    while spiky.cost(days_ago(1)) < 1 or spiky.cost(days_ago(20)) < 1:
        spiky = generate(rng, first, last)
    plant_spike(spiky, days_ago(1))
    plant_spike(spiky, days_ago(20))
    fresh = generate(rng, first, last)
    plant_new_model(fresh, days_ago(5))
    await ingest_histories(ingest, tenant, [spiky, fresh])
    return spiky, fresh


async def test_the_list_is_the_workspaces_own_filtered_by_range_and_key(client, ingest, alice, bob):
    spiky, fresh = await spiky_keys(ingest, alice)
    r = await client.get(PATH, headers=alice.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # The default range is the last 30 days, newest day first.
    assert [(i["key_id"], i["day"], i["kind"]) for i in items] == [
        (spiky.key_id, str(days_ago(1)), "spend_spike"),
        (fresh.key_id, str(days_ago(5)), "new_model"),
        (spiky.key_id, str(days_ago(20)), "spend_spike"),
    ]
    spike = items[0]
    assert spike["score"] > 6
    assert Decimal(spike["evidence"]["spend_usd"]) == spiky.cost(days_ago(1))
    assert items[1]["evidence"]["models"] == ["x-ai/grok-leak"]

    r = await client.get(PATH, headers=alice.headers, params=window(days_ago(19), days_ago(2)))
    assert [(i["day"], i["kind"]) for i in r.json()["items"]] == [(str(days_ago(5)), "new_model")]
    r = await client.get(PATH, headers=alice.headers, params={**window(days_ago(40)), "key_id": spiky.key_id})
    assert {i["key_id"] for i in r.json()["items"]} == {spiky.key_id}
    assert len(r.json()["items"]) == 2

    # Another workspace sees none of them, and cannot name alice's key.
    r = await client.get(PATH, headers=bob.headers, params=window(days_ago(40)))
    assert r.status_code == 200
    assert r.json() == {"items": [], "total": 0, "page": 1, "per_page": 50}
    assert_problem(await client.get(PATH, headers=bob.headers, params={"key_id": spiky.key_id}), 404)


async def test_the_list_is_paged_past_any_cap(client, ingest, alice):
    """`page` and `per_page` walk every anomaly; `total` counts them all."""
    spiky, fresh = await spiky_keys(ingest, alice)
    expected = [
        (spiky.key_id, str(days_ago(1)), "spend_spike"),
        (fresh.key_id, str(days_ago(5)), "new_model"),
        (spiky.key_id, str(days_ago(20)), "spend_spike"),
    ]
    seen = []
    for page in (1, 2):
        r = await client.get(PATH, headers=alice.headers, params={"page": page, "per_page": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["total"], body["page"], body["per_page"]) == (3, page, 2)
        seen += [(i["key_id"], i["day"], i["kind"]) for i in body["items"]]
    assert seen == expected
    r = await client.get(PATH, headers=alice.headers, params={"page": 3, "per_page": 2})
    assert (r.json()["items"], r.json()["total"]) == ([], 3)
    r = await client.get(PATH, headers=alice.headers, params={"key_id": fresh.key_id, "per_page": 1})
    assert (len(r.json()["items"]), r.json()["total"]) == (1, 1)
    for params in ({"page": 0}, {"per_page": 0}, {"per_page": 251}, {"page": "x"}):
        assert_problem(await client.get(PATH, headers=alice.headers, params=params), 422)


async def test_bad_input_is_a_4xx_problem(client, alice):
    for params in (
        {"from": "2026-13-01"},
        {"from": "yesterday"},
        {"to": "2026-02-30"},
        {"key_id": "not-a-uuid"},
    ):
        assert_problem(await client.get(PATH, headers=alice.headers, params=params), 422)
    problem = assert_problem(
        await client.get(PATH, headers=alice.headers, params=window(days_ago(1), days_ago(3))), 422
    )
    assert problem["type"].endswith("invalid-range")
    assert_problem(await client.get(PATH, headers=alice.headers, params=window(days_ago(5000))), 422)
    assert_problem(await client.get(PATH, headers=alice.headers, params={"key_id": str(uuid.uuid4())}), 404)


async def count(db_connection, workspace_id: str) -> int:
    async with savepoint(db_connection) as conn:
        sql = text("SELECT count(*) FROM usage.key_anomalies WHERE workspace_id = :w")
        return int(await conn.scalar(sql, {"w": uuid.UUID(workspace_id)}) or 0)


async def test_a_workspaces_erasure_takes_its_anomalies(client, ingest, service_headers, db_connection, alice, bob):
    await spiky_keys(ingest, alice)
    await spiky_keys(ingest, bob, seed=4)
    assert await count(db_connection, alice.workspace_id) == 3
    r = await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers("workspaces:delete"))
    assert r.status_code == 204
    assert await count(db_connection, alice.workspace_id) == 0
    assert await count(db_connection, bob.workspace_id) == 3


async def test_retention_removes_anomalies_past_the_window_only(client, ingest, service_headers, db_connection, alice):
    spiky, _ = await spiky_keys(ingest, alice)
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text(
                "INSERT INTO usage.key_anomalies (workspace_id, key_id, day, kind, score, evidence) "
                "VALUES (:w, :k, :d, 'spend_spike', 9, '{}')"
            ),
            {"w": uuid.UUID(alice.workspace_id), "k": uuid.UUID(spiky.key_id), "d": days_ago(450)},
        )
    assert await count(db_connection, alice.workspace_id) == 4
    r = await client.post("/internal/retention", headers=service_headers("usage:cleanup"), json={})
    assert r.status_code == 200, r.text
    assert r.json()["deleted"]["key_anomalies"] == 1
    assert await count(db_connection, alice.workspace_id) == 3
