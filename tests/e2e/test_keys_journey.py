"""The key vault through the gateway and the internal API, against the real processes."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.test_journey import PASSWORD, problem

pytestmark = pytest.mark.e2e


def openrouter_key() -> str:
    return "sk-or-v1-" + secrets.token_hex(32)


async def signed_in(client: httpx.AsyncClient) -> dict[str, str]:
    email = f"vault.{secrets.token_hex(4)}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def worker_token(
    system: System, *, scope: str = "keys:due keys:reveal keys:status", audience: str = "owr-keys"
) -> dict[str, str]:
    """What the worker does: client credentials for a short-lived service token (auth is called directly)."""
    async with httpx.AsyncClient(base_url=system.auth, timeout=10) as client:
        r = await client.post(
            "/internal/service-tokens",
            json={
                "client_id": system.env["WORKER_SERVICE_CLIENT_ID"],
                "client_secret": system.env["WORKER_SERVICE_CLIENT_SECRET"],
                "audience": audience,
                "scope": scope,
            },
        )
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def test_add_list_rename_deactivate_sync_reveal_delete(system: System):
    secret = openrouter_key()
    keys_url = f"http://127.0.0.1:{system.ports.keys}"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        user = await signed_in(client)
        r = await client.post("/api/v1/keys", headers=user, json={"name": "  production  ", "key": secret})
        assert r.status_code == 201, r.text
        key = r.json()
        assert key["name"] == "production"
        assert key["label"] == f"sk-or-v1-{secret[9:12]}...{secret[-3:]}"
        assert key["status"] == "pending"
        assert key["kind"] is None
        assert secret not in r.text

        problem(await client.post("/api/v1/keys", headers=user, json={"name": "again", "key": secret}), 409)
        bad = await client.post("/api/v1/keys", headers=user, json={"name": "x", "key": "not-a-key-" + secret[9:]})
        problem(bad, 422)
        assert secret[9:] not in bad.text

        listing = (await client.get("/api/v1/keys", headers=user)).json()
        assert [k["id"] for k in listing["items"]] == [key["id"]]
        assert listing["total"] == 1

        r = await client.patch(f"/api/v1/keys/{key['id']}", headers=user, json={"name": "prod", "is_active": False})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "prod"
        assert r.json()["is_active"] is False
        r = await client.patch(f"/api/v1/keys/{key['id']}", headers=user, json={"is_active": True})
        assert r.json()["is_active"] is True

        first = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=user)
        second = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=user)
        assert first.status_code == second.status_code == 202
        assert first.json()["job_id"] == second.json()["job_id"] == f"sync_key:{key['id']}"

        # The worker's path: never through the gateway.
        problem(await client.post(f"/internal/keys/{key['id']}/reveal", headers=user), 404)

    async with httpx.AsyncClient(base_url=keys_url, timeout=10) as keys:
        problem(await keys.post(f"/internal/keys/{key['id']}/reveal", headers=user), 401)
        no_scope = await worker_token(system, scope="keys:due")
        problem(await keys.post(f"/internal/keys/{key['id']}/reveal", headers=no_scope), 403)
        worker = await worker_token(system)
        r = await keys.post(f"/internal/keys/{key['id']}/reveal", headers={**worker, "x-request-id": "e2e-reveal-1"})
        assert r.status_code == 200, r.text
        assert r.json()["key"] == secret

    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        # The worker really syncs it: OpenRouter (the emulator) does not know this key, so it turns invalid.
        for _ in range(100):
            view = (await client.get(f"/api/v1/keys/{key['id']}", headers=user)).json()
            if view["status"] != "pending":
                break
            await asyncio.sleep(0.2)
        assert (view["status"], view["kind"]) == ("invalid", None), view
        assert "401" in view["last_error"]
        async with httpx.AsyncClient(base_url=keys_url, timeout=10) as keys:
            due = (await keys.get("/internal/keys/due", headers=worker)).json()
        assert key["id"] not in [item["id"] for item in due["items"]]  # synced just now

        audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=user)).json()
        actions = [event["action"] for event in audit["items"]]
        for action in ("created", "renamed", "deactivated", "activated", "sync_requested", "revealed"):
            assert action in actions, actions
        reveals = [e for e in audit["items"] if e["action"] == "revealed"]
        assert "e2e-reveal-1" in [e["request_id"] for e in reveals]
        assert {e["actor_id"] for e in reveals} == {"worker"}
        assert secret not in str(audit)

        assert (await client.delete(f"/api/v1/keys/{key['id']}", headers=user)).status_code == 204
        problem(await client.get(f"/api/v1/keys/{key['id']}", headers=user), 404)

    logs = system.logs()
    assert secret not in logs
    assert secret[9:] not in logs


async def test_another_workspace_sees_nothing(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        alice, bob = await signed_in(client), await signed_in(client)
        key = (await client.post("/api/v1/keys", headers=alice, json={"name": "a", "key": openrouter_key()})).json()
        assert (await client.get("/api/v1/keys", headers=bob)).json()["items"] == []
        for method, path in (
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", "/sync"),
            ("GET", "/audit"),
        ):
            body = {"name": "stolen"} if method == "PATCH" else None
            r = await client.request(method, f"/api/v1/keys/{key['id']}{path}", headers=bob, json=body)
            problem(r, 404)


async def test_deleting_an_account_erases_its_keys(system: System):
    secret = openrouter_key()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        user = await signed_in(client)
        key = (await client.post("/api/v1/keys", headers=user, json={"name": "gone soon", "key": secret})).json()
        assert (await client.delete("/api/v1/auth/me", headers=user)).status_code == 204
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{system.ports.keys}", timeout=10) as keys:
        worker = await worker_token(system)
        problem(await keys.post(f"/internal/keys/{key['id']}/reveal", headers=worker), 404)
