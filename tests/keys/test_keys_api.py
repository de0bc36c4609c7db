"""The public API: store, list, read, rename, (de)activate, delete, audit."""

from __future__ import annotations

import uuid

from tests.keys.conftest import new_secret, store_key
from tests.support.db import savepoint
from tests.support.http import assert_problem

VIEW_FIELDS = {
    "id",
    "name",
    "kind",
    "label",
    "status",
    "is_active",
    "limit",
    "limit_reset",
    "limit_remaining",
    "expires_at",
    "last_synced_at",
    "last_error",
    "created_at",
}


async def test_store_key_answers_a_masked_view(client, alice):
    secret = new_secret()
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "  prod key  ", "key": secret})
    assert r.status_code == 201, r.text
    view = r.json()
    assert set(view) == VIEW_FIELDS
    assert view["name"] == "prod key"
    assert view["label"] == f"sk-or-v1-{secret[9:12]}...{secret[-3:]}"
    assert view["kind"] is None
    assert view["status"] == "pending"
    assert view["is_active"] is True
    assert view["limit"] is None
    assert view["last_synced_at"] is None
    assert view["created_at"].endswith("Z")
    assert secret not in r.text
    uuid.UUID(view["id"])


async def test_label_of_a_key_without_the_v1_prefix(client, alice):
    secret = "sk-or-" + "A1b2C3d4E5f6G7h8I9j0_-xyz"
    view = await store_key(client, alice, secret)
    assert view["label"] == "sk-or-A1b...xyz"


async def test_leading_and_trailing_whitespace_of_the_key_is_forgiven(client, alice):
    secret = new_secret()
    view = await store_key(client, alice, f"  {secret}\n")
    assert view["label"].endswith(secret[-3:])


async def test_same_key_twice_in_a_workspace_is_409(client, alice, bob):
    secret = new_secret()
    await store_key(client, alice, secret)
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "again", "key": secret})
    body = assert_problem(r, 409)
    assert body["type"].endswith("/duplicate-key")
    assert secret not in r.text
    # Another workspace may hold the same key.
    await store_key(client, bob, secret)


async def test_list_is_paginated_newest_first(client, alice):
    ids = [(await store_key(client, alice, name=f"k{i}"))["id"] for i in range(5)]
    r = await client.get("/api/v1/keys", headers=alice.headers, params={"page": 1, "per_page": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 5
    assert page["page"] == 1
    assert page["per_page"] == 2
    assert [k["id"] for k in page["items"]] == ids[::-1][:2]
    r = await client.get("/api/v1/keys", headers=alice.headers, params={"page": 3, "per_page": 2})
    assert [k["id"] for k in r.json()["items"]] == [ids[0]]
    r = await client.get("/api/v1/keys", headers=alice.headers, params={"page": 4, "per_page": 2})
    assert r.json()["items"] == []
    assert r.json()["total"] == 5
    r = await client.get("/api/v1/keys", headers=alice.headers, params={"per_page": 250})
    assert r.status_code == 200


async def test_list_counts_only_the_callers_workspace(client, alice, bob):
    r = await client.get("/api/v1/keys", headers=alice.headers)
    assert r.json() == {"items": [], "total": 0, "page": 1, "per_page": 50}
    for i in range(3):
        await store_key(client, bob, name=f"b{i}")
    await store_key(client, alice, name="a0")
    page = (await client.get("/api/v1/keys", headers=alice.headers, params={"per_page": 1})).json()
    assert page["total"] == 1
    assert [k["name"] for k in page["items"]] == ["a0"]
    assert (await client.get("/api/v1/keys", headers=bob.headers, params={"page": 2, "per_page": 2})).json()[
        "total"
    ] == 3


async def test_get_patch_delete(client, alice):
    view = await store_key(client, alice, name="first")
    url = f"/api/v1/keys/{view['id']}"
    r = await client.get(url, headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == view

    r = await client.patch(url, headers=alice.headers, json={"name": " second "})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "second"
    assert r.json()["is_active"] is True

    r = await client.patch(url, headers=alice.headers, json={"is_active": False})
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    assert r.json()["name"] == "second"

    r = await client.patch(url, headers=alice.headers, json={})
    assert r.status_code == 200
    assert r.json()["name"] == "second"

    r = await client.patch(url, headers=alice.headers, json={"name": None, "is_active": True})
    assert r.status_code == 200
    assert r.json()["is_active"] is True
    assert r.json()["name"] == "second"

    r = await client.delete(url, headers=alice.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(await client.get(url, headers=alice.headers), 404)
    assert_problem(await client.delete(url, headers=alice.headers), 404)
    assert_problem(await client.get(f"{url}/audit", headers=alice.headers), 404)


async def test_audit_records_every_change_with_actor_and_request_id(client, alice):
    view = await store_key(client, alice, name="a")
    url = f"/api/v1/keys/{view['id']}"
    await client.patch(url, headers={**alice.headers, "x-request-id": "req-rename-1"}, json={"name": "b"})
    await client.patch(url, headers=alice.headers, json={"name": "b"})  # no change, no event
    await client.patch(url, headers=alice.headers, json={"is_active": False})
    await client.patch(url, headers=alice.headers, json={"is_active": True})
    r = await client.get(f"{url}/audit", headers=alice.headers)
    assert r.status_code == 200, r.text
    page = r.json()
    actions = [e["action"] for e in page["items"]]
    assert actions == ["activated", "deactivated", "renamed", "created"]
    assert page["total"] == 4
    for event in page["items"]:
        assert event["actor_type"] == "user"
        assert event["actor_id"] == alice.user_id
        assert event["key_id"] == view["id"]
        assert event["created_at"].endswith("Z")
    renamed = page["items"][2]
    assert renamed["request_id"] == "req-rename-1"
    assert renamed["details"] == {"from": "a", "to": "b"}
    r = await client.get(f"{url}/audit", headers=alice.headers, params={"per_page": 1, "page": 4})
    assert [e["action"] for e in r.json()["items"]] == ["created"]


async def test_deleted_keys_audit_rows_remain_in_the_database(client, alice, db_connection):
    from sqlalchemy import text

    view = await store_key(client, alice)
    assert (await client.delete(f"/api/v1/keys/{view['id']}", headers=alice.headers)).status_code == 204
    async with savepoint(db_connection) as conn:
        rows = (
            await conn.execute(
                text("SELECT action FROM keys.audit_events WHERE key_id = :k ORDER BY id"), {"k": view["id"]}
            )
        ).all()
    assert [r.action for r in rows] == ["created", "deleted"]
