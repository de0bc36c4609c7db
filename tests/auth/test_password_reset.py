"""Password reset by email (issue 16): 202 whatever the address, limited per address and per email, a
one-time link of 30 minutes, and a new password that ends every session and API token."""

from __future__ import annotations

import statistics
import time
import uuid

import jwt

from tests.auth.conftest import (
    PASSWORD,
    emailed_token,
    login,
    queued_mails,
    register,
    registered_session,
    unique_email,
)
from tests.auth.test_api_tokens import introspect, make_token
from tests.support.http import assert_problem, bearer

NEW_PASSWORD = "a brand new passphrase of mine 9"


async def ask_reset(client, email: str):
    return await client.post("/api/v1/auth/password-reset", json={"email": email})


async def confirm(client, token: str, new_password: str = NEW_PASSWORD):
    return await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password})


async def test_known_and_unknown_addresses_get_the_same_answer(client, db_session):
    user = await register(client)
    known = await ask_reset(client, user["email"])
    unknown = await ask_reset(client, unique_email("nobody"))
    invalid = await ask_reset(client, "not an address")
    for r in (known, unknown, invalid):
        assert r.status_code == 202, r.text
        assert r.headers["content-type"] == "application/json"
    assert known.content == unknown.content == invalid.content
    assert "link" in known.json()["detail"]
    # Only the known address gets a mail.
    assert [m.kind for m in await queued_mails(db_session, user["id"])] == ["verify_email", "password_reset"]


async def test_known_and_unknown_addresses_take_about_the_same_time(client):
    """No enumeration by timing: the mail's job is queued after the answer, so a known address costs one
    more row and nothing else (the limits bound how often anyone can measure)."""
    user = await register(client)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for _ in range(6):
        for kind, email in (("known", user["email"]), ("unknown", unique_email("nobody"))):
            started = time.perf_counter()
            assert (await ask_reset(client, email)).status_code in (202, 429)
            timings[kind].append(time.perf_counter() - started)
    known, unknown = (statistics.median(timings[k]) for k in ("known", "unknown"))
    assert abs(known - unknown) < 0.025, timings


async def test_the_link_sets_the_password_once_and_never_twice(client, db_session):
    user, _ = await registered_session(client)
    assert (await ask_reset(client, user["email"])).status_code == 202
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    assert token.startswith("owrp_")
    assert (await confirm(client, token)).status_code == 204
    await login(client, user["email"], NEW_PASSWORD)
    assert_problem(await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}), 401)
    again = await confirm(client, token, "yet another passphrase 10")
    assert assert_problem(again, 410)["type"].endswith("/link-expired")
    await login(client, user["email"], NEW_PASSWORD)


async def test_a_reset_ends_every_session_access_token_and_api_token(client, db_session, redis_client):
    user, pair = await registered_session(client)
    other = await login(client, user["email"])
    api_token = await make_token(client, pair["access_token"])
    assert (await introspect(client, api_token["token"])).json()["active"] is True
    await ask_reset(client, user["email"])
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    assert (await confirm(client, token)).status_code == 204

    for session in (pair, other):
        assert_problem(await client.get("/api/v1/auth/me", headers=bearer(session["access_token"])), 401)
        refused = await client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
        assert_problem(refused, 401)
        # What the gateway reads: the session's sid is denied, and the user's tokens before now.
        sid = jwt.decode(session["access_token"], options={"verify_signature": False})["sid"]
        assert await redis_client.exists(f"owr:revoked:sid:{sid}") == 1
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 1
    assert (await introspect(client, api_token["token"])).json()["active"] is False


async def test_a_refused_password_leaves_the_link_working(client, db_session):
    user = await register(client)
    await ask_reset(client, user["email"])
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    refused = await confirm(client, token, "short")
    body = assert_problem(refused, 422)
    assert body["errors"][0]["type"] == "password_too_short"
    assert body["errors"][0]["loc"] == ["body", "new_password"]
    assert_problem(await confirm(client, token, "qwerty123456"), 422)  # one of the most common
    assert (await confirm(client, token)).status_code == 204


async def test_a_link_expires_after_30_minutes(client, db_session, clock):
    user = await register(client)
    await ask_reset(client, user["email"])
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    clock.advance(30 * 60 + 1)
    assert_problem(await confirm(client, token), 410)
    await login(client, user["email"], PASSWORD)


async def test_a_later_password_change_outdates_the_link(client, db_session, clock):
    user, pair = await registered_session(client)
    await ask_reset(client, user["email"])
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    clock.advance(-5)  # the link was minted before the change below, by the clock the change uses
    changed = await client.put(
        "/api/v1/auth/me/password",
        headers=bearer(pair["access_token"]),
        json={"current_password": PASSWORD, "new_password": "changed the usual way 11"},
    )
    assert changed.status_code == 204
    assert_problem(await confirm(client, token), 410)


async def test_one_link_used_kills_the_others_and_verifies_the_address(client, db_session):
    user = await register(client)
    await ask_reset(client, user["email"])
    first = await emailed_token(client, db_session, user["id"], "password_reset")
    await ask_reset(client, user["email"])
    second = await emailed_token(client, db_session, user["id"], "password_reset")
    assert (await confirm(client, second)).status_code == 204
    assert_problem(await confirm(client, first), 400)
    fresh = await login(client, user["email"], NEW_PASSWORD)
    me = (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).json()
    assert me["email_verified"] is True  # the link proved the mailbox


async def test_unknown_malformed_and_other_purpose_tokens_are_400(client, db_session):
    user = await register(client)
    verify_token = await emailed_token(client, db_session, user["id"], "verify_email")
    for token in (verify_token, "owrp_" + "x" * 43, "owrp_short", "x" * 200):
        assert assert_problem(await confirm(client, token), 400)["type"].endswith("/invalid-link")


async def test_requests_are_limited_per_email_address_known_or_not(app_factory):
    async with app_factory(password_reset_max_per_email=2) as client:
        for email in (unique_email("nobody"), (await register(client))["email"]):
            for _ in range(2):
                assert (await ask_reset(client, email)).status_code == 202
            refused = await ask_reset(client, email.upper())  # the same address, however it is spelt
            assert assert_problem(refused, 429)["type"].endswith("/too-many-emails")
            assert int(refused.headers["retry-after"]) > 0
        assert (await ask_reset(client, unique_email("another"))).status_code == 202


async def test_requests_are_limited_per_client_address(app_factory):
    async with app_factory(password_reset_max_per_ip=3) as client:
        for _ in range(3):
            assert (await ask_reset(client, unique_email("nobody"))).status_code == 202
        assert_problem(await ask_reset(client, unique_email("nobody")), 429)


async def test_no_token_or_password_reaches_the_logs(client, db_session, json_logs):
    user = await register(client)
    await ask_reset(client, user["email"])
    await ask_reset(client, unique_email("nobody"))
    token = await emailed_token(client, db_session, user["id"], "password_reset")
    await confirm(client, token)
    await confirm(client, token)
    logs = json_logs.getvalue()
    assert "password_reset_requested" in logs
    assert "password_reset" in logs
    for secret in (token, token[5:], NEW_PASSWORD):
        assert secret not in logs
    assert user["email"] not in logs


async def test_a_reset_mail_for_an_account_deleted_meanwhile_is_not_sent(client, db_session):
    user, pair = await registered_session(client)
    await ask_reset(client, user["email"])
    (mail,) = await queued_mails(db_session, user["id"], "password_reset")
    assert (await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 204
    assert await queued_mails(db_session, uuid.UUID(user["id"])) == []  # gone with the account
    assert_problem(await client.post(f"/internal/mail/{mail.id}/render", headers={}), 401)
