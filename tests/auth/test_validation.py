"""Bad input is always a 4xx problem; no response or log line carries a password or a token."""

from __future__ import annotations

import json

import pytest

from tests.auth.conftest import PASSWORD, login, register, unique_email
from tests.support.http import assert_problem, bearer

BODY_ROUTES = [
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/logout"),
    ("PUT", "/api/v1/auth/me/password"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_malformed_json_is_400(client, method, path):
    r = await client.request(method, path, content=b'{"email": ', headers={"content-type": "application/json"})
    body = assert_problem(r, 400)
    assert body["type"].endswith("/malformed-json")


@pytest.mark.parametrize(
    ("path", "payload", "loc", "kind"),
    [
        ("/api/v1/auth/register", {"email": "a@example.com"}, ["body", "password"], "missing"),
        ("/api/v1/auth/register", {"email": 5, "password": PASSWORD}, ["body", "email"], "string_type"),
        (
            "/api/v1/auth/register",
            {"email": "a@example.com", "password": PASSWORD, "admin": True},
            ["body", "admin"],
            "extra_forbidden",
        ),
        (
            "/api/v1/auth/register",
            {"email": "a@example.com", "password": "p" * 1025},
            ["body", "password"],
            "string_too_long",
        ),
        ("/api/v1/auth/register", {"email": "a" * 255, "password": PASSWORD}, ["body", "email"], "string_too_long"),
        ("/api/v1/auth/login", {"email": "a@example.com", "password": None}, ["body", "password"], "string_type"),
        (
            "/api/v1/auth/login",
            {"email": "a\u0000@example.com", "password": PASSWORD},
            ["body", "email"],
            "value_error",
        ),
        ("/api/v1/auth/refresh", {}, ["body", "refresh_token"], "missing"),
        ("/api/v1/auth/refresh", {"refresh_token": ["x"]}, ["body", "refresh_token"], "string_type"),
        ("/api/v1/auth/logout", {"refresh_token": "x", "all": True}, ["body", "all"], "extra_forbidden"),
    ],
)
async def test_invalid_bodies_are_422(client, path, payload, loc, kind):
    r = await client.post(path, json=payload)
    body = assert_problem(r, 422)
    assert [loc, kind] in [[e["loc"], e["type"]] for e in body["errors"]]
    assert PASSWORD not in r.text


async def test_body_that_is_not_an_object_is_422(client):
    assert_problem(await client.post("/api/v1/auth/login", json=["a", "b"]), 422)
    assert_problem(
        await client.post("/api/v1/auth/login", content=b"", headers={"content-type": "application/json"}), 422
    )


async def test_lone_surrogates_are_422_not_500(client):
    raw = b'{"email": "a@example.com", "password": "abc\\ud800defghijklmnop"}'
    r = await client.post("/api/v1/auth/register", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 422)
    r = await client.post("/api/v1/auth/login", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, 422)


async def test_change_password_body_is_validated(client):
    user = await register(client)
    pair = await login(client, user["email"])
    r = await client.put("/api/v1/auth/me/password", headers=bearer(pair["access_token"]), json={"new_password": "x"})
    body = assert_problem(r, 422)
    assert ["body", "current_password"] in [e["loc"] for e in body["errors"]]


async def test_no_password_or_token_in_responses_or_logs(client, json_logs):
    email = unique_email()
    wrong = "definitely-not-it-" + PASSWORD
    new = "a brand new passphrase for this test"
    responses = [await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})]
    responses.append(await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}))
    responses.append(await client.post("/api/v1/auth/login", json={"email": email, "password": wrong}))
    ok = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    pair = ok.json()
    responses.append(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])))
    responses.append(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}))
    responses.append(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}))
    # The reuse ended that session, its access token too: the password change needs a new one.
    fresh = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    responses.append(
        await client.put(
            "/api/v1/auth/me/password",
            headers=bearer(fresh["access_token"]),
            json={"current_password": wrong, "new_password": new},
        )
    )
    responses.append(
        await client.put(
            "/api/v1/auth/me/password",
            headers=bearer(fresh["access_token"]),
            json={"current_password": PASSWORD, "new_password": new},
        )
    )
    responses.append(await client.post("/api/v1/auth/login", json={"email": email, "password": "x" * 2000}))
    logs = json_logs.getvalue()
    for event in ("user_registered", "login", "refresh_token_reuse", "password_changed", "sessions_revoked"):
        assert f'"event":"{event}"' in logs
    for line in logs.splitlines():
        if line.strip():
            json.loads(line)
    secrets = (
        *(PASSWORD, wrong, new, pair["access_token"], pair["refresh_token"], pair["refresh_token"][5:]),
        *(fresh["access_token"], fresh["refresh_token"]),
    )
    for secret in secrets:
        assert secret not in logs
        for response in responses:
            assert secret not in response.text
