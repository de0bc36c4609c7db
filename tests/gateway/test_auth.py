"""JWT routes: every way a token can be wrong is a 401 problem; valid tokens are verified once, then cached."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis

from tests.gateway.conftest import Gateway, SigningKey, Upstream, bearer, metric

PROBLEM = "application/problem+json"
URL = "/api/v1/keys/abc"


def _b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token(kid: str) -> str:
    now = int(time.time())
    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    claims = {
        "sub": "u1",
        "typ": "access",
        "jti": "j",
        "iss": "owr-auth",
        "aud": "owr-api",
        "iat": now,
        "exp": now + 600,
    }
    return f"{_b64(header)}.{_b64(claims)}."


def bad_authorizations(key: SigningKey) -> dict[str, str | None]:
    now = int(time.time())
    foreign_same_kid = SigningKey(Ed25519PrivateKey.generate(), kid=key.kid)
    foreign_other_kid = SigningKey(Ed25519PrivateKey.generate(), kid="someone-else")
    hs256 = jwt.encode(
        {"sub": "u1", "typ": "access", "jti": "j", "iss": "owr-auth", "aud": "owr-api", "iat": now, "exp": now + 600},
        "a-shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": key.kid},
    )
    return {
        "missing": None,
        "empty bearer": "Bearer ",
        "basic scheme": "Basic dXNlcjpwYXNz",
        "malformed": "Bearer not-a-jwt",
        "three garbage parts": "Bearer abc.def.ghi",
        "alg none": f"Bearer {unsigned_token(key.kid)}",
        "alg HS256": f"Bearer {hs256}",
        "foreign key, same kid": f"Bearer {foreign_same_kid.token()}",
        "foreign key, unknown kid": f"Bearer {foreign_other_kid.token()}",
        "expired": f"Bearer {key.token(iat=now - 900, exp=now - 120)}",
        "wrong audience": f"Bearer {key.token(aud='someone-else')}",
        "wrong issuer": f"Bearer {key.token(iss='evil')}",
        "wrong typ": f"Bearer {key.token(typ='refresh')}",
        "missing jti": f"Bearer {key.token(jti=None)}",
        "missing sub": f"Bearer {key.token(sub=None)}",
        "lives too long": f"Bearer {key.token(exp=now + 3600)}",
        "tampered claims": "Bearer " + _tamper(key.token()),
    }


def _tamper(token: str) -> str:
    header, claims, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=="))
    data["sub"] = "someone-else"
    return f"{header}.{_b64(data)}.{signature}"


CASES = list(bad_authorizations(SigningKey(Ed25519PrivateKey.generate(), "x")).keys())


@pytest.mark.parametrize("case", CASES)
async def test_bad_tokens_are_401_problems(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey, case: str
):
    authorization = bad_authorizations(signing_key)[case]
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with client.get(gateway.url + URL, headers=headers) as response:
        assert response.status == 401, case
        assert response.content_type == PROBLEM
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
    assert body["status"] == 401
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "ratelimit" not in {k.lower() for k in response.headers}
    assert upstream.seen == []


async def test_valid_token_reaches_upstream_with_authorization_intact(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    token = signing_key.token()
    async with client.get(gateway.url + URL, headers=bearer(token)) as response:
        assert response.status == 200
    assert len(upstream.seen) == 1
    assert dict(upstream.seen[0].headers)["Authorization"] == f"Bearer {token}"


async def test_verified_tokens_are_cached(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    token = signing_key.token()
    hits, misses = (
        metric("owr_gateway_jwt_cache_total", result="hit"),
        metric("owr_gateway_jwt_cache_total", result="miss"),
    )
    for _ in range(3):
        async with client.get(gateway.url + URL, headers=bearer(token)) as response:
            assert response.status == 200
    assert metric("owr_gateway_jwt_cache_total", result="miss") == misses + 1
    assert metric("owr_gateway_jwt_cache_total", result="hit") == hits + 2
    # A different token is verified on its own.
    async with client.get(gateway.url + URL, headers=bearer(signing_key.token())) as response:
        assert response.status == 200
    assert metric("owr_gateway_jwt_cache_total", result="miss") == misses + 2
    assert len(upstream.seen) == 4


async def test_cached_token_is_dropped_at_its_expiry(
    gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey
):
    now = int(time.time())
    # Expires in 1 s; the verifier's 30 s leeway would still accept it, the cache must not outlive exp.
    token = signing_key.token(iat=now - 60, exp=now + 1)
    async with client.get(gateway.url + URL, headers=bearer(token)) as response:
        assert response.status == 200
    misses = metric("owr_gateway_jwt_cache_total", result="miss")
    await _sleep_until(now + 1.05)
    async with client.get(gateway.url + URL, headers=bearer(token)) as response:
        assert response.status == 200  # still inside the leeway, but verified again
    assert metric("owr_gateway_jwt_cache_total", result="miss") == misses + 1


async def _sleep_until(deadline: float) -> None:
    import asyncio

    await asyncio.sleep(max(0.0, deadline - time.time()))


async def test_revoked_tokens_are_refused_even_when_cached(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey, redis_client: Redis
):
    now = int(time.time())
    sub = "user-to-revoke"
    old = signing_key.token(sub, iat=now - 10)
    async with client.get(gateway.url + URL, headers=bearer(old)) as response:
        assert response.status == 200  # verified and cached
    await redis_client.set(f"owr:revoked:user:{sub}", now - 5, ex=60)
    async with client.get(gateway.url + URL, headers=bearer(old)) as response:
        assert response.status == 401
        assert response.content_type == PROBLEM
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Issued at or after the mark: accepted. Other users: unaffected.
    async with client.get(gateway.url + URL, headers=bearer(signing_key.token(sub, iat=now - 5))) as response:
        assert response.status == 200
    async with client.get(gateway.url + URL, headers=bearer(signing_key.token("someone-else", iat=now - 10))) as r:
        assert r.status == 200
    assert len(upstream.seen) == 3
