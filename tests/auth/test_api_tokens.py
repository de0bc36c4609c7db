"""Personal API tokens: shown once, stored as HMAC only, listed without their value, revoked at once,
and introspected by the gateway into a short-lived JWT that carries the token's scopes."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import text

from owr_auth.api_tokens import token_format
from tests.auth.conftest import API_TOKEN_PEPPER, GATEWAY_SECRET, WORKER_SECRET, basic, registered_session
from tests.support.http import assert_problem, bearer

GATEWAY = basic("gateway", GATEWAY_SECRET)


async def introspect(client, token: str, headers: dict[str, str] | None = None):
    return await client.post("/internal/tokens/introspect", headers=headers or GATEWAY, json={"token": token})


async def make_token(client, access: str, **body):
    body.setdefault("name", "ci script")
    r = await client.post("/api/v1/tokens", headers=bearer(access), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_tokens_are_shaped_for_secret_scanners_and_checked_without_a_lookup():
    token = token_format.new_token()
    assert token.startswith("owr_")
    assert len(token) == token_format.TOKEN_LENGTH
    assert token_format.well_formed(token)
    assert token != token_format.new_token()
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not token_format.well_formed(flipped)  # the checksum catches a typo
    for bad in ("", "owr_", token[:-1], token + "x", "ghp_" + token[4:], token.replace(token[5], "-")):
        assert not token_format.well_formed(bad)


async def test_a_token_is_shown_once_and_stored_as_its_hmac_only(client, db_session):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    token = created["token"]
    assert token_format.well_formed(token)
    assert created["prefix"] == token[:10]
    assert created["scopes"] == ["usage:read", "keys:read"]  # read-only by default
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)

    listing = (await client.get("/api/v1/tokens", headers=bearer(pair["access_token"]))).json()
    assert [t["id"] for t in listing["items"]] == [created["id"]]
    assert "token" not in listing["items"][0]
    assert token not in str(listing)
    assert token[10:] not in str(listing)

    row = (await db_session.execute(text("SELECT * FROM auth.api_tokens WHERE id = :id"), {"id": created["id"]})).one()
    assert bytes(row.token_hash) == hmac.new(API_TOKEN_PEPPER.encode(), token.encode(), hashlib.sha256).digest()
    assert token not in str(tuple(row))


async def test_introspection_gives_the_caller_and_a_jwt_with_the_token_scopes(client):
    user, pair = await registered_session(client)
    created = await make_token(
        client, pair["access_token"], scopes=["keys:sync", "usage:read"], rate_limit_per_minute=7
    )
    r = await introspect(client, created["token"])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    answer = r.json()
    assert answer["active"] is True
    assert (answer["user_id"], answer["workspace_id"]) == (user["id"], user["workspace"]["id"])
    assert (answer["token_id"], answer["rate_limit_per_minute"]) == (created["id"], 7)
    assert answer["scopes"] == ["usage:read", "keys:sync"]
    assert 0 < answer["cache_seconds"] <= 60 < answer["access_token_expires_in"]
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert (claims["typ"], claims["sub"], claims["wid"], claims["tid"]) == (
        "access",
        user["id"],
        user["workspace"]["id"],
        created["id"],
    )
    assert claims["scope"] == "keys:sync usage:read"
    assert claims["exp"] - claims["iat"] <= 300

    listing = (await client.get("/api/v1/tokens", headers=bearer(pair["access_token"]))).json()
    assert listing["items"][0]["last_used_at"] is not None


async def test_a_revoked_token_is_inactive_and_its_gateway_cache_entry_is_gone(client, redis_client):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    hashed = hmac.new(API_TOKEN_PEPPER.encode(), created["token"].encode(), hashlib.sha256).digest()
    await redis_client.set(token_format.cache_key(hashed), b"cached introspection", ex=60)

    r = await client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert await redis_client.get(token_format.cache_key(hashed)) is None
    assert (await introspect(client, created["token"])).json() == {"active": False} | _nulls()
    assert (await client.get("/api/v1/tokens", headers=bearer(pair["access_token"]))).json()["items"] == []
    again = await client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(pair["access_token"]))
    assert_problem(again, 404)


def _nulls() -> dict[str, None]:
    keys = ("token_id", "user_id", "workspace_id", "scopes", "rate_limit_per_minute", "expires_at")
    return dict.fromkeys((*keys, "access_token", "access_token_expires_in", "cache_seconds"))


async def test_expired_unknown_and_malformed_tokens_are_inactive(client, db_session):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    await db_session.execute(
        text("UPDATE auth.api_tokens SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": created["id"]},
    )
    for token in (created["token"], token_format.new_token(), "owr_nope", "sk-or-v1-" + "0" * 64):
        r = await introspect(client, token)
        assert r.status_code == 200
        assert r.json()["active"] is False


async def test_introspection_needs_a_client_with_the_introspect_scope(client):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    assert_problem(await introspect(client, created["token"], basic("worker", WORKER_SECRET)), 403)
    assert_problem(await introspect(client, created["token"], basic("gateway", "wrong" * 10)), 401)
    assert_problem(await introspect(client, created["token"], bearer(pair["access_token"])), 401)
    assert_problem(await introspect(client, created["token"], {"authorization": "Basic !!!"}), 401)


async def test_tokens_are_managed_only_with_a_session_and_only_ones_own(client):
    _, alice = await registered_session(client)
    _, bob = await registered_session(client)
    created = await make_token(client, alice["access_token"], scopes=["keys:read", "keys:write"])
    # An API token's JWT cannot mint, list or revoke tokens.
    jwt_for_token = (await introspect(client, created["token"])).json()["access_token"]
    for method, url in (
        ("POST", "/api/v1/tokens"),
        ("GET", "/api/v1/tokens"),
        ("DELETE", f"/api/v1/tokens/{created['id']}"),
    ):
        r = await client.request(
            method, url, headers=bearer(jwt_for_token), json={"name": "x"} if method == "POST" else None
        )
        assert assert_problem(r, 403)["type"].endswith("/session-required")
    # Bob sees nothing of Alice's and cannot revoke it.
    assert (await client.get("/api/v1/tokens", headers=bearer(bob["access_token"]))).json()["items"] == []
    assert_problem(await client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(bob["access_token"])), 404)
    assert (await introspect(client, created["token"])).json()["active"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["keys:read"]},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "expires_in_days": 366},
        {"name": "x", "rate_limit_per_minute": 0},
        {"name": "x", "token": "owr_mine"},
    ],
)
async def test_bad_token_requests_are_422(client, body):
    _, pair = await registered_session(client)
    assert_problem(await client.post("/api/v1/tokens", headers=bearer(pair["access_token"]), json=body), 422)


async def test_a_token_dies_with_its_user(client):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    assert (await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 204
    assert (await introspect(client, created["token"])).json()["active"] is False


async def test_no_token_value_reaches_the_logs(client, json_logs):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    await introspect(client, created["token"])
    await client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(pair["access_token"]))
    await introspect(client, created["token"])
    logs = json_logs.getvalue()
    assert "api_token_created" in logs
    assert "api_token_revoked" in logs
    assert created["token"] not in logs
    assert created["token"][10:] not in logs
    assert str(uuid.UUID(created["id"])) in logs


async def test_an_api_token_can_read_me_but_never_change_the_password_or_delete_the_account(client):
    user, pair = await registered_session(client)
    created = await make_token(
        client, pair["access_token"], scopes=["keys:read", "keys:write", "keys:sync", "usage:read"]
    )
    acting = bearer((await introspect(client, created["token"])).json()["access_token"])
    me = await client.get("/api/v1/auth/me", headers=acting)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    r = await client.put(
        "/api/v1/auth/me/password", headers=acting, json={"current_password": "x" * 12, "new_password": "y" * 16}
    )
    assert assert_problem(r, 403)["type"].endswith("/session-required")
    assert assert_problem(await client.delete("/api/v1/auth/me", headers=acting), 403)["type"].endswith(
        "/session-required"
    )
    assert (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
