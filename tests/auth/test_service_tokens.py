"""`POST /internal/service-tokens`: client credentials, scopes, audiences, and the tokens' claims."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from jwt import PyJWK

from owr_auth.service_tokens.service import own_service_token
from owr_auth.signing.service import mint_service_token
from owr_shared.jwt import InvalidToken, JwksVerifier
from tests.auth.conftest import USAGE_READER_SECRET, WORKER_SECRET, registered_session
from tests.support.http import assert_problem, bearer

URL = "/internal/service-tokens"
WORKER_SCOPES = "keys:due keys:reveal keys:status"


def credentials(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": "worker", "client_secret": WORKER_SECRET, "audience": "owr-keys"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def verifier(client: httpx.AsyncClient, audience: str) -> JwksVerifier:
    """A verifier as another service builds one: auth's JWKS over HTTP, its own audience."""

    async def fetch() -> dict[str, Any]:
        data: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
        return data

    return JwksVerifier(fetch, issuer="owr-auth", audience=audience)


async def test_good_credentials_get_a_service_token_with_all_scopes(client):
    r = await client.post(URL, json=credentials())
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "bearer",
        "expires_in": 300,
        "scope": WORKER_SCOPES,
    }

    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": header["kid"]}
    jwks = {k["kid"]: k for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert header["kid"] in jwks
    claims = jwt.decode(token, PyJWK(jwks[header["kid"]]).key, algorithms=["EdDSA"], audience="owr-keys")
    assert set(claims) == {"sub", "typ", "scope", "jti", "iss", "aud", "iat", "exp"}
    assert (claims["sub"], claims["typ"], claims["aud"], claims["iss"]) == ("worker", "service", "owr-keys", "owr-auth")
    assert claims["scope"] == WORKER_SCOPES
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - time.time()) < 5

    principal = await verifier(client, "owr-keys").verify(token, expected_types=("service",))
    assert principal.subject == "worker"
    assert principal.scopes == frozenset(WORKER_SCOPES.split())
    second = (await client.post(URL, json=credentials())).json()["access_token"]
    assert jwt.decode(second, options={"verify_signature": False})["jti"] != claims["jti"]


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("keys:due", "keys:due"),
        ("keys:status keys:due", "keys:due keys:status"),
        ("  keys:reveal   keys:reveal ", "keys:reveal"),
    ],
)
async def test_a_subset_of_the_scopes_can_be_asked_for(client, scope, granted):
    r = await client.post(URL, json=credentials(scope=scope, audience="owr-usage"))
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == granted
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert (claims["scope"], claims["aud"]) == (granted, "owr-usage")


async def test_configured_lifetime(app_factory):
    async with app_factory(service_token_ttl_seconds=60) as client:
        body = (await client.post(URL, json=credentials())).json()
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert body["expires_in"] == 60
    assert claims["exp"] - claims["iat"] == 60


async def test_unknown_client_and_wrong_secret_get_the_same_401(client):
    attempts = [
        credentials(client_secret=WORKER_SECRET[:-1] + "x"),
        credentials(client_secret="short"),
        credentials(client_secret=USAGE_READER_SECRET),  # another client's secret
        credentials(client_id="nobody"),
        credentials(client_id="auth"),  # auth's own subject is not a client
        credentials(client_id="usage-reader", client_secret=WORKER_SECRET),
    ]
    bodies = []
    for body in attempts:
        r = await client.post(URL, json=body)
        problem = assert_problem(r, 401)
        assert r.headers["www-authenticate"] == "Bearer"
        assert body["client_secret"] not in r.text
        problem.pop("request_id")
        bodies.append(problem)
    assert bodies[0]["type"].endswith("/invalid-client")
    assert all(b == bodies[0] for b in bodies)


@pytest.mark.parametrize(
    "scope",
    [
        "workspaces:delete",  # a known scope the client does not have
        "keys:due workspaces:delete",  # escalation next to an allowed one
        "admin",  # not a scope at all
        "",
        "   ",
    ],
)
async def test_scopes_beyond_the_clients_are_403(client, scope):
    r = await client.post(URL, json=credentials(scope=scope))
    assert assert_problem(r, 403)["type"].endswith("/invalid-scope")
    assert "access_token" not in r.text


@pytest.mark.parametrize("audience", ["owr-api", "owr-billing", "OWR-KEYS"])
async def test_audiences_beyond_the_clients_are_403(client, audience):
    r = await client.post(URL, json=credentials(audience=audience))
    assert assert_problem(r, 403)["type"].endswith("/audience-not-allowed")


async def test_the_audience_is_checked_per_client(client):
    r = await client.post(URL, json=credentials(client_id="usage-reader", client_secret=USAGE_READER_SECRET))
    assert_problem(r, 403)
    r = await client.post(
        URL, json=credentials(client_id="usage-reader", client_secret=USAGE_READER_SECRET, audience="owr-usage")
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "keys:due"


async def test_credentials_are_checked_before_scope_and_audience(client):
    # An outsider learns nothing about what a client may do.
    r = await client.post(URL, json=credentials(client_secret="x" * 40, audience="owr-api", scope="admin"))
    assert_problem(r, 401)


async def test_a_bearer_token_is_no_substitute_for_credentials(client):
    _, pair = await registered_session(client)
    service = (await client.post(URL, json=credentials())).json()["access_token"]
    for token in (pair["access_token"], service):
        assert_problem(await client.post(URL, headers=bearer(token)), 422)
        assert_problem(await client.post(URL, headers=bearer(token), json={}), 422)
        assert_problem(await client.post(URL, headers=bearer(token), json=credentials(client_secret="x" * 40)), 401)


async def test_request_body_is_strict(client):
    r = await client.post(URL, json={**credentials(), "grant_type": "client_credentials"})
    assert_problem(r, 422)
    r = await client.post(URL, json=credentials(client_secret="a\x00b"))
    assert_problem(r, 422)


async def test_service_tokens_are_refused_by_user_endpoints(client, shared_app):
    user, _ = await registered_session(client)
    token = (await client.post(URL, json=credentials())).json()["access_token"]
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert_problem(await client.delete("/api/v1/auth/me", headers=bearer(token)), 401)
    # Even with the user audience and a user's id as subject, the `typ` claim keeps it out.
    keyring, settings = shared_app.state.keyring, shared_app.state.settings
    forged = mint_service_token(keyring, settings, client_id=user["id"], audience="owr-api", scopes=["keys:due"])
    body = assert_problem(await client.get("/api/v1/auth/me", headers=bearer(forged.token)), 401)
    assert body["type"].endswith("/invalid-token")


async def test_user_access_tokens_are_refused_where_service_tokens_are_expected(client):
    _, pair = await registered_session(client)
    with pytest.raises(InvalidToken):
        await verifier(client, "owr-api").verify(pair["access_token"], expected_types=("service",))


async def test_auth_mints_its_own_service_tokens(client, shared_app):
    token = own_service_token(
        shared_app.state.keyring, shared_app.state.settings, audience="owr-keys", scopes=["workspaces:delete"]
    )
    principal = await verifier(client, "owr-keys").verify(token, expected_types=("service",))
    assert principal.subject == "auth"
    assert principal.scopes == frozenset({"workspaces:delete"})
    assert principal.expires_at - principal.issued_at == 300
    with pytest.raises(InvalidToken):
        await verifier(client, "owr-usage").verify(token, expected_types=("service",))


async def test_no_secret_or_token_in_logs(client, json_logs):
    ok = await client.post(URL, json=credentials())
    await client.post(URL, json=credentials(client_secret=WORKER_SECRET + "-wrong"))
    await client.post(URL, json=credentials(client_id=WORKER_SECRET))  # a secret pasted as the id
    await client.post(URL, json=credentials(scope="workspaces:delete"))
    logs = json_logs.getvalue()
    assert "service_token_issued" in logs
    assert "service_token_refused" in logs
    assert WORKER_SECRET not in logs
    assert ok.json()["access_token"] not in logs
