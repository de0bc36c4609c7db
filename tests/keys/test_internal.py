"""The internal API: due keys, audited reveals, status reports, workspace erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from tests.keys.conftest import new_secret, store_key
from tests.support.db import savepoint
from tests.support.http import assert_problem
from tests.support.tenants import ServiceHeaders


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _report(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, key_id: str, **body: Any
) -> httpx.Response:
    body.setdefault("status", "valid")
    body.setdefault("last_synced_at", _iso(datetime.now(UTC)))
    return await client.post(f"/internal/keys/{key_id}/status", headers=service_headers("keys:status"), json=body)


async def test_reveal_returns_the_plaintext_uncached_and_is_audited(client, alice, service_headers):
    secret = new_secret()
    key = await store_key(client, alice, secret)
    r = await client.post(
        f"/internal/keys/{key['id']}/reveal",
        headers={**service_headers("keys:reveal", client_id="worker-7"), "x-request-id": "reveal-req-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"workspace_id": str(alice.workspace_id), "key": secret, "name": "my key"}
    assert r.headers["cache-control"] == "no-store"
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert audit[0]["action"] == "revealed"
    assert audit[0]["actor_type"] == "service"
    assert audit[0]["actor_id"] == "worker-7"
    assert audit[0]["request_id"] == "reveal-req-1"
    assert audit[0]["details"] == {}


async def test_reveal_of_unknown_or_inactive_key(client, alice, service_headers):
    assert_problem(await client.post(f"/internal/keys/{uuid.uuid4()}/reveal", headers=service_headers()), 404)
    key = await store_key(client, alice)
    await client.patch(f"/api/v1/keys/{key['id']}", headers=alice.headers, json={"is_active": False})
    r = await client.post(f"/internal/keys/{key['id']}/reveal", headers=service_headers())
    assert assert_problem(r, 409)["type"].endswith("/key-inactive")
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert "revealed" not in [e["action"] for e in audit]


async def test_status_report_updates_the_view_with_exact_money(client, alice, service_headers):
    key = await store_key(client, alice)
    synced = datetime.now(UTC).replace(microsecond=0)
    raw = (
        '{"kind": "inference", "status": "valid", "limit": 100.123456789012, "limit_reset": "monthly",'
        ' "limit_remaining": "0.1234567890123456789012345", "expires_at": "2027-01-01T00:00:00+00:00",'
        f' "last_synced_at": "{_iso(synced)}"' + "}"
    )
    r = await client.post(
        f"/internal/keys/{key['id']}/status",
        headers={**service_headers("keys:status"), "content-type": "application/json"},
        content=raw,
    )
    assert r.status_code == 204, r.text
    r = await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)
    # Money is a JSON number with every digit (not a string, not a rounded float).
    assert '"limit":100.123456789012,' in r.text
    assert '"limit_remaining":0.1234567890123456789012345,' in r.text
    view = r.json()
    assert view["kind"] == "inference"
    assert view["status"] == "valid"
    assert view["limit_reset"] == "monthly"
    assert view["expires_at"] == "2027-01-01T00:00:00Z"
    assert view["last_synced_at"] == _iso(synced)
    assert view["last_error"] is None
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert audit[0]["action"] == "status_reported"
    assert audit[0]["details"] == {"status": "valid", "kind": "inference", "applied": True}


async def test_fields_left_out_keep_their_value_and_null_clears(client, alice, service_headers):
    key = await store_key(client, alice)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    await _report(client, service_headers, key["id"], kind="management", limit=5, last_synced_at=_iso(t0))
    r = await _report(client, service_headers, key["id"], status="error", last_error="upstream 502")
    assert r.status_code == 204
    view = (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).json()
    assert view["kind"] == "management"
    assert view["limit"] == 5
    assert view["status"] == "error"
    assert view["last_error"] == "upstream 502"
    await _report(client, service_headers, key["id"], limit=None)
    view = (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).json()
    assert view["limit"] is None
    assert view["last_error"] is None


async def test_stale_report_is_ignored(client, alice, service_headers):
    key = await store_key(client, alice)
    now = datetime.now(UTC)
    await _report(client, service_headers, key["id"], status="valid", last_synced_at=_iso(now))
    r = await _report(
        client, service_headers, key["id"], status="invalid", last_synced_at=_iso(now - timedelta(hours=1))
    )
    assert r.status_code == 204
    view = (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).json()
    assert view["status"] == "valid"
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert audit[0]["details"]["applied"] is False


async def test_future_sync_time_is_clamped(client, alice, service_headers):
    key = await store_key(client, alice)
    await _report(client, service_headers, key["id"], last_synced_at="2099-01-01T00:00:00Z")
    view = (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).json()
    assert view["last_synced_at"] < "2099"


async def test_last_error_is_scrubbed_and_bounded(client, alice, service_headers):
    secret = new_secret()
    key = await store_key(client, alice, secret)
    error = (
        f"401 for key {secret} with Bearer {secret} and token owr_{'x' * 40}, bare {secret[9:]}\x00\n" + "word " * 600
    )
    r = await _report(client, service_headers, key["id"], status="invalid", last_error=error)
    assert r.status_code == 204, r.text
    view = (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).json()
    stored = view["last_error"]
    assert secret not in stored
    assert secret[9:] not in stored
    assert "owr_x" not in stored
    assert "\x00" not in stored
    assert len(stored) == 500
    assert stored.endswith("...")
    assert stored.startswith("401 for key ***")
    r = await _report(client, service_headers, key["id"], last_error="z" * 4001)
    assert_problem(r, 422)


async def test_status_report_validation(client, alice, service_headers):
    key = await store_key(client, alice)
    bad = [
        {"status": "great", "last_synced_at": "2026-01-01T00:00:00Z"},
        {"status": "valid"},
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00"},  # naive time
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z", "kind": "admin"},
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z", "limit": "NaN"},
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z", "limit": 1e300},
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z", "limit_reset": "every full moon"},
        {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z", "is_active": False},
    ]
    for body in bad:
        r = await client.post(f"/internal/keys/{key['id']}/status", headers=service_headers("keys:status"), json=body)
        assert_problem(r, 422)
    r = await client.post(
        f"/internal/keys/{uuid.uuid4()}/status",
        headers=service_headers("keys:status"),
        json={"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z"},
    )
    assert_problem(r, 404)


async def test_due_lists_active_keys_never_or_long_ago_synced_oldest_first(client, tenant_factory, service_headers):
    tenant = tenant_factory()
    never = await store_key(client, tenant, name="never")
    old = await store_key(client, tenant, name="old")
    older = await store_key(client, tenant, name="older")
    fresh = await store_key(client, tenant, name="fresh")
    inactive = await store_key(client, tenant, name="inactive")
    now = datetime.now(UTC)
    await _report(client, service_headers, old["id"], last_synced_at=_iso(now - timedelta(hours=1)))
    await _report(client, service_headers, older["id"], last_synced_at=_iso(now - timedelta(hours=2)))
    await _report(client, service_headers, fresh["id"], last_synced_at=_iso(now - timedelta(seconds=30)))
    await client.patch(f"/api/v1/keys/{inactive['id']}", headers=tenant.headers, json={"is_active": False})

    r = await client.get("/internal/keys/due", headers=service_headers("keys:due"), params={"limit": 1000})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    mine = [i for i in items if i["workspace_id"] == tenant.workspace_id]
    assert [i["id"] for i in mine] == [never["id"], older["id"], old["id"]]
    assert set(mine[0]) == {"id", "workspace_id", "kind", "status", "last_synced_at"}
    assert mine[0]["last_synced_at"] is None
    # Never-synced keys come before every synced one, across workspaces too.
    firsts = [i["last_synced_at"] for i in items]
    assert firsts == sorted(firsts, key=lambda t: (t is not None, t or ""))
    r = await client.get("/internal/keys/due", headers=service_headers("keys:due"), params={"limit": 1})
    assert len(r.json()["items"]) == 1
    for limit in (0, 1001, "x"):
        assert_problem(
            await client.get("/internal/keys/due", headers=service_headers("keys:due"), params={"limit": limit}), 422
        )


async def test_delete_workspace_erases_keys_and_audit_idempotently(client, alice, bob, service_headers, db_connection):
    keys = [await store_key(client, alice) for _ in range(2)]
    bobs = await store_key(client, bob)
    await client.delete(f"/api/v1/keys/{keys[0]['id']}", headers=alice.headers)
    url = f"/internal/workspaces/{alice.workspace_id}"
    r = await client.delete(url, headers=service_headers("workspaces:delete"))
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get("/api/v1/keys", headers=alice.headers)).json()["total"] == 0
    async with savepoint(db_connection) as conn:
        for table in ("openrouter_keys", "audit_events"):
            count = await conn.scalar(
                text(f"SELECT count(*) FROM keys.{table} WHERE workspace_id = :w"),  # noqa: S608 - fixed names
                {"w": alice.workspace_id},
            )
            assert count == 0
    assert (await client.delete(url, headers=service_headers("workspaces:delete"))).status_code == 204
    assert (await client.get(f"/api/v1/keys/{bobs['id']}", headers=bob.headers)).status_code == 200
    assert_problem(await client.delete("/internal/workspaces/nope", headers=service_headers()), 422)


async def test_batch_reveal_reveals_each_key_and_names_the_rest(client, alice, service_headers):
    secrets_ = [new_secret(), new_secret()]
    keys = [await store_key(client, alice, secret) for secret in secrets_]
    inactive = await store_key(client, alice)
    await client.patch(f"/api/v1/keys/{inactive['id']}", headers=alice.headers, json={"is_active": False})
    missing = str(uuid.uuid4())
    ids = [keys[0]["id"], missing, inactive["id"], keys[1]["id"], keys[0]["id"]]
    r = await client.post(
        "/internal/keys/reveal",
        headers={**service_headers("keys:reveal", client_id="worker-9"), "x-request-id": "batch-1"},
        json={"ids": ids},
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    workspace = str(alice.workspace_id)
    assert body["items"] == [
        {"id": keys[0]["id"], "workspace_id": workspace, "name": "my key", "key": secrets_[0]},
        {"id": keys[1]["id"], "workspace_id": workspace, "name": "my key", "key": secrets_[1]},
    ]
    assert body["unavailable"] == [{"id": missing, "reason": "not_found"}, {"id": inactive["id"], "reason": "inactive"}]
    for key in keys:  # one audit event per revealed key, even when asked twice
        audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
        reveals = [e for e in audit if e["action"] == "revealed"]
        assert [(e["actor_id"], e["request_id"]) for e in reveals] == [("worker-9", "batch-1")]


async def test_batch_reveal_input_rules(client, service_headers):
    bodies: list[dict[str, Any]] = [{"ids": []}, {"ids": [str(uuid.uuid4())] * 501}, {"ids": ["nope"]}, {}]
    for body in bodies:
        assert_problem(await client.post("/internal/keys/reveal", headers=service_headers(), json=body), 422)
    r = await client.post("/internal/keys/reveal", headers=service_headers("keys:status"), json={"ids": []})
    assert_problem(r, 403)


async def test_batch_status_applies_ignores_and_reports_missing(client, alice, service_headers):
    fresh, stale = await store_key(client, alice), await store_key(client, alice)
    now = datetime.now(UTC).replace(microsecond=0)
    assert (await _report(client, service_headers, stale["id"], last_synced_at=_iso(now))).status_code == 204
    missing = str(uuid.uuid4())
    items = [
        {"id": fresh["id"], "status": "valid", "kind": "management", "limit": "12.5", "last_synced_at": _iso(now)},
        {"id": stale["id"], "status": "invalid", "last_synced_at": _iso(now - timedelta(minutes=5))},
        {"id": missing, "status": "valid", "last_synced_at": _iso(now)},
    ]
    r = await client.post("/internal/keys/status", headers=service_headers("keys:status"), json={"items": items})
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": [fresh["id"]], "ignored": [stale["id"]], "not_found": [missing]}
    view = (await client.get(f"/api/v1/keys/{fresh['id']}", headers=alice.headers)).json()
    assert (view["status"], view["kind"], view["limit"]) == ("valid", "management", 12.5)
    assert (await client.get(f"/api/v1/keys/{stale['id']}", headers=alice.headers)).json()["status"] == "valid"


async def test_the_due_scan_leaves_rejected_keys_to_the_daily_validation(client, alice, service_headers):
    valid, rejected = await store_key(client, alice), await store_key(client, alice)
    long_ago = _iso(datetime.now(UTC) - timedelta(days=2))
    assert (await _report(client, service_headers, valid["id"], last_synced_at=long_ago)).status_code == 204
    r = await _report(client, service_headers, rejected["id"], status="invalid", last_synced_at=long_ago)
    assert r.status_code == 204

    async def due(**params: Any) -> set[str]:
        r = await client.get(
            "/internal/keys/due", headers=service_headers("keys:due"), params={"limit": 1000, **params}
        )
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]} & {valid["id"], rejected["id"]}

    assert await due() == {valid["id"]}
    assert await due(invalid="only") == {rejected["id"]}
    assert await due(invalid="include") == {valid["id"], rejected["id"]}
    assert_problem(
        await client.get("/internal/keys/due", headers=service_headers("keys:due"), params={"invalid": "x"}), 422
    )


async def test_a_write_made_at_openrouter_is_audited_once_per_action(client, alice, service_headers):
    """Issue 17: the worker reports each write it made at OpenRouter; the workspace reads it in the key's audit."""
    key = await store_key(client, alice)
    action_id = str(uuid.uuid4())
    body = {
        "action": "upstream_limit_set",
        "action_id": action_id,
        "reason": "limit set to 20 USD (weekly) by a user",
        "source": "user",
        "requested_by": alice.user_id,
        "limit": 20.5,
        "limit_reset": "weekly",
    }
    path = f"/internal/keys/{key['id']}/upstream-audit"
    for _ in range(2):  # at least once: a repeated report records nothing more
        r = await client.post(path, headers=service_headers("keys:status", client_id="worker-3"), json=body)
        assert r.status_code == 204, r.text
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    [event] = [e for e in audit if e["action"].startswith("upstream_")]
    assert (event["action"], event["actor_type"], event["actor_id"]) == ("upstream_limit_set", "service", "worker-3")
    # Money as exact decimal text.
    assert event["details"] == {**{k: v for k, v in body.items() if k != "action"}, "limit": "20.5"}
    for bad in ({**body, "action": "deleted"}, {**body, "source": "someone"}, {**body, "reason": "x" * 301}):
        assert_problem(await client.post(path, headers=service_headers("keys:status"), json=bad), 422)
    gone = await client.post(
        f"/internal/keys/{uuid.uuid4()}/upstream-audit", headers=service_headers("keys:status"), json=body
    )
    assert_problem(gone, 404)
