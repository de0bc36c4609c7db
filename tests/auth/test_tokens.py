"""Access tokens: claims, JWKS, attacks against `/me`, and signing-key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import PyJWK

from owr_auth.signing.keyring import private_key_pem, public_key_pem, thumbprint
from tests.auth.conftest import access_claims, login, register, registered_session, sign
from tests.support.http import assert_problem, bearer


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_thumbprint_matches_rfc_8037_example():
    # RFC 8037, Appendix A.3: the JWK thumbprint of the example Ed25519 public key.
    assert thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo") == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


async def test_jwks_publishes_public_keys_only(client, shared_app):
    r = await client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=300"
    keys = r.json()["keys"]
    assert len(keys) == 1
    (key,) = keys
    assert key == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key["x"],
        "kid": thumbprint(key["x"]),
        "alg": "EdDSA",
        "use": "sig",
    }
    assert key["kid"] == shared_app.state.keyring.active_kid
    assert "d" not in key


async def test_access_token_header_and_claims(client):
    user, pair = await registered_session(client)
    token = pair["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": header["kid"]}
    jwk = (await client.get("/.well-known/jwks.json")).json()["keys"][0]
    assert header["kid"] == jwk["kid"]
    claims = jwt.decode(token, PyJWK(jwk).key, algorithms=["EdDSA"], audience="owr-api", issuer="owr-auth")
    assert set(claims) == {"sub", "wid", "role", "email_verified", "typ", "jti", "iss", "aud", "iat", "exp", "sid"}
    assert claims["typ"] == "access"
    assert claims["sub"] == user["id"]
    assert claims["wid"] == user["workspace"]["id"]
    assert claims["role"] == "owner"
    assert 0 < claims["exp"] - claims["iat"] <= 900
    assert abs(claims["iat"] - time.time()) < 5
    other = await login(client, user["email"])
    assert jwt.decode(other["access_token"], options={"verify_signature": False})["jti"] != claims["jti"]


async def test_me_with_a_valid_token(client):
    user, pair = await registered_session(client)
    r = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    assert r.json() == user


def _alg_none(claims: dict[str, Any], kid: str) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    "attack",
    [
        "missing",
        "garbage",
        "alg_none",
        "foreign_key_same_kid",
        "hs256_with_public_key",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "refresh_token_as_access",
        "refresh_typ_claim",
        "too_long_lifetime",
        "missing_jti",
        "tampered_payload",
        "unknown_user",
        "non_uuid_subject",
    ],
)
async def test_attacks_on_me_are_401_problems(client, shared_app, attack):
    user, pair = await registered_session(client)
    kid = shared_app.state.keyring.active_kid
    now = int(time.time())
    headers = bearer("x")
    if attack == "missing":
        headers = {}
    elif attack == "garbage":
        headers = bearer("not.a.jwt")
    elif attack == "alg_none":
        headers = bearer(_alg_none(access_claims(user), kid))
    elif attack == "foreign_key_same_kid":
        foreign = Ed25519PrivateKey.generate()
        token = jwt.encode(access_claims(user), foreign, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})
        headers = bearer(token)
    elif attack == "hs256_with_public_key":
        x = (await client.get("/.well-known/jwks.json")).json()["keys"][0]["x"]
        payload = b64url(json.dumps(access_claims(user)).encode())
        head = b64url(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": kid}).encode())
        signature = hmac.new(x.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
        headers = bearer(f"{head}.{payload}.{b64url(signature)}")
    elif attack == "expired":
        headers = bearer(sign(shared_app, access_claims(user, iat=now - 1000, exp=now - 100)))
    elif attack == "wrong_audience":
        headers = bearer(sign(shared_app, access_claims(user, aud="someone-else")))
    elif attack == "wrong_issuer":
        headers = bearer(sign(shared_app, access_claims(user, iss="evil")))
    elif attack == "refresh_token_as_access":
        headers = bearer(pair["refresh_token"])
    elif attack == "refresh_typ_claim":
        headers = bearer(sign(shared_app, access_claims(user, typ="refresh")))
    elif attack == "too_long_lifetime":
        headers = bearer(sign(shared_app, access_claims(user, exp=now + 3600)))
    elif attack == "missing_jti":
        claims = access_claims(user)
        del claims["jti"]
        headers = bearer(sign(shared_app, claims))
    elif attack == "tampered_payload":
        head, _, sig = pair["access_token"].split(".")
        other = access_claims(user, role="admin")
        headers = bearer(f"{head}.{b64url(json.dumps(other).encode())}.{sig}")
    elif attack == "unknown_user":
        headers = bearer(sign(shared_app, access_claims(user, sub="00000000-0000-4000-8000-000000000000")))
    elif attack == "non_uuid_subject":
        headers = bearer(sign(shared_app, access_claims(user, sub="admin")))
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert_problem(r, 401)
    assert user["email"] not in r.text


async def test_signing_key_rotation(app_factory):
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    async with app_factory(jwt_private_key=private_key_pem(old)) as before:
        user = await register(before)
        old_token = (await login(before, user["email"]))["access_token"]

    retired = [public_key_pem(old.public_key())]
    async with app_factory(jwt_private_key=private_key_pem(new), jwt_retired_public_keys=retired) as during:
        kids = [k["kid"] for k in (await during.get("/.well-known/jwks.json")).json()["keys"]]
        assert kids == [during.app.state.keyring.active_kid, jwt.get_unverified_header(old_token)["kid"]]
        assert (await during.get("/api/v1/auth/me", headers=bearer(old_token))).status_code == 200
        new_token = (await login(during, user["email"]))["access_token"]
        assert jwt.get_unverified_header(new_token)["kid"] == kids[0]

    async with app_factory(jwt_private_key=private_key_pem(new)) as after:
        assert_problem(await after.get("/api/v1/auth/me", headers=bearer(old_token)), 401)
        assert (await after.get("/api/v1/auth/me", headers=bearer(new_token))).status_code == 200
