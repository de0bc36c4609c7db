"""Issue 13, findings 5 and 11: a token cannot escape its user's limit or outnumber the cap, and every
API token dies with a password change or "sign out everywhere"."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from owr_auth.api_tokens import token_format
from tests.auth.conftest import API_TOKEN_PEPPER, PASSWORD, login, registered_session
from tests.auth.test_api_tokens import introspect, make_token
from tests.support.http import assert_problem, bearer


async def test_a_tokens_limit_is_capped_at_the_users(client):
    _, pair = await registered_session(client)
    r = await client.post(
        "/api/v1/tokens", headers=bearer(pair["access_token"]), json={"name": "x", "rate_limit_per_minute": 100_000}
    )
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["body", "rate_limit_per_minute"]
    assert "600" in body["detail"]
    assert (await make_token(client, pair["access_token"], rate_limit_per_minute=600))["rate_limit_per_minute"] == 600


async def test_an_older_token_above_the_cap_is_held_to_it_at_introspection(client, db_session):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"], rate_limit_per_minute=500)
    await db_session.execute(
        text("UPDATE auth.api_tokens SET rate_limit_per_minute = 100000 WHERE id = :id"), {"id": created["id"]}
    )
    answer = (await introspect(client, created["token"])).json()
    assert answer["active"] is True
    assert answer["rate_limit_per_minute"] == 600


async def test_a_user_holds_at_most_the_cap_of_live_tokens(app_factory):
    async with app_factory(api_tokens_per_user_max=3) as client:
        _, pair = await registered_session(client)
        tokens = [await make_token(client, pair["access_token"], name=f"t{i}") for i in range(3)]
        r = await client.post("/api/v1/tokens", headers=bearer(pair["access_token"]), json={"name": "one more"})
        assert_problem(r, 409)["type"].endswith("/too-many-tokens")
        # A revoked token no longer counts.
        assert (
            await client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=bearer(pair["access_token"]))
        ).status_code == 204
        await make_token(client, pair["access_token"], name="replacement")


async def test_concurrent_creations_cannot_pass_the_cap_together(committed_client, settings_factory):
    """The user's row lock serialises creations: of 8 at once with room for 2, exactly 2 succeed."""
    client = committed_client
    _, pair = await registered_session(client)
    for i in range(48):  # the default cap is 50
        await make_token(client, pair["access_token"], name=f"t{i}")
    results = await asyncio.gather(
        *(client.post("/api/v1/tokens", headers=bearer(pair["access_token"]), json={"name": f"c{i}"}) for i in range(8))
    )
    assert sorted(r.status_code for r in results) == [201, 201, *[409] * 6]


async def _tokens_and_cache(client, redis_client, access: str) -> list[str]:
    values = [(await make_token(client, access, name=f"n{i}"))["token"] for i in range(2)]
    for value in values:
        assert (await introspect(client, value)).json()["active"] is True
        key = token_format.cache_key(token_format.token_hash(API_TOKEN_PEPPER.encode(), value))
        await redis_client.hset(key, mapping={"jwt": "cached", "tid": "t", "uid": "u", "iat": "1"})
    return values


async def test_a_password_change_revokes_every_api_token(client, redis_client):
    """An API token still worked 1 s after a password change (finding 11)."""
    _, pair = await registered_session(client)
    values = await _tokens_and_cache(client, redis_client, pair["access_token"])
    r = await client.put(
        "/api/v1/auth/me/password",
        headers=bearer(pair["access_token"]),
        json={"current_password": PASSWORD, "new_password": "another long passphrase 8"},
    )
    assert r.status_code == 204, r.text
    for value in values:
        assert (await introspect(client, value)).json()["active"] is False
        key = token_format.cache_key(token_format.token_hash(API_TOKEN_PEPPER.encode(), value))
        assert await redis_client.exists(key) == 0  # the gateway's cached answer is gone too


async def test_sign_out_everywhere_ends_sessions_and_api_tokens(client, redis_client):
    user, first = await registered_session(client)
    second = await login(client, user["email"])
    values = await _tokens_and_cache(client, redis_client, first["access_token"])
    assert (await client.delete("/api/v1/auth/me/sessions", headers=bearer(first["access_token"]))).status_code == 204
    for pair in (first, second):
        assert_problem(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)
        assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    for value in values:
        assert (await introspect(client, value)).json()["active"] is False
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 1
    again = await login(client, user["email"])  # the password still works: only sessions ended
    assert (await client.get("/api/v1/auth/me", headers=bearer(again["access_token"]))).status_code == 200


async def test_an_api_token_cannot_sign_out_everywhere(client):
    _, pair = await registered_session(client)
    created = await make_token(client, pair["access_token"])
    jwt_for_token = (await introspect(client, created["token"])).json()["access_token"]
    r = await client.delete("/api/v1/auth/me/sessions", headers=bearer(jwt_for_token))
    assert_problem(r, 403)["type"].endswith("/session-required")
