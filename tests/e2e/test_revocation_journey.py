"""Issue 13, finding 9 and 11 through the real gateway and services: a revoked token stops at once.

Probed on 2026-12-01: "an access token still worked 1 s after logout", "an API token still worked 1 s
after a password change", "a token minted in the same second as the deletion of its account got a 500".
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.test_journey import PASSWORD, problem

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a different long passphrase 9"


async def _session(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"revoke.{secrets.token_hex(4)}@example.com"
    assert (await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).status_code == 201
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return email, r.json()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_logout_ends_the_access_token_at_the_gateway_at_once(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        _, pair = await _session(client)
        headers = _bearer(pair["access_token"])
        for path in ("/api/v1/keys", "/api/v1/auth/me"):  # the gateway has verified and cached it
            assert (await client.get(path, headers=headers)).status_code == 200
        assert (
            await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
        ).status_code == 204
        for path in ("/api/v1/keys", "/api/v1/usage/accounts", "/api/v1/auth/me", "/api/v1/tokens"):
            problem(await client.get(path, headers=headers), 401)


async def test_refresh_token_reuse_ends_the_access_token_at_the_gateway(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        _, pair = await _session(client)
        rotated = (await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
        assert (await client.get("/api/v1/keys", headers=_bearer(rotated["access_token"]))).status_code == 200
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
        problem(await client.get("/api/v1/keys", headers=_bearer(rotated["access_token"])), 401)


async def test_a_password_change_ends_api_tokens_and_a_new_login_works_at_once(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        email, pair = await _session(client)
        session = _bearer(pair["access_token"])
        r = await client.post("/api/v1/tokens", headers=session, json={"name": "script"})
        assert r.status_code == 201, r.text
        script = _bearer(r.json()["token"])
        assert (await client.get("/api/v1/keys", headers=script)).status_code == 200  # introspected, cached
        r = await client.put(
            "/api/v1/auth/me/password",
            headers=session,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert r.status_code == 204, r.text
        problem(await client.get("/api/v1/keys", headers=script), 401)
        problem(await client.get("/api/v1/keys", headers=session), 401)
        # In the same second as the change: the sub-second cut-off admits the new session's token.
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
        assert r.status_code == 200, r.text
        assert (await client.get("/api/v1/keys", headers=_bearer(r.json()["access_token"]))).status_code == 200


async def test_a_deleted_users_token_is_a_401_not_a_500(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        email, first = await _session(client)
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        second = _bearer(r.json()["access_token"])
        assert (await client.delete("/api/v1/auth/me", headers=_bearer(first["access_token"]))).status_code == 204
        problem(await client.post("/api/v1/tokens", headers=second, json={"name": "0"}), 401)
        problem(await client.get("/api/v1/keys", headers=second), 401)
    # And at auth itself, past the gateway: the database says the user is gone.
    async with httpx.AsyncClient(base_url=system.auth, timeout=15) as direct:
        problem(await direct.post("/api/v1/tokens", headers=second, json={"name": "0"}), 401)
