"""Removing a member or lowering their role cuts their tokens for that workspace off at once (issue 16):
auth writes `owr:revoked:member:{workspace}:{user}`, read in the same Redis call as the other marks.

A session's JWT minted before the mark is refused (401); an API token's cached introspection is asked
again, so the gateway forwards auth's new answer (the lowered role, or not active: 401).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import jwt
from redis.asyncio import Redis

from owr_shared.wire.redis_keys import member_revocation_key
from tests.gateway.conftest import Gateway, GatewayFactory, SigningKey, Upstream, bearer
from tests.gateway.test_hardening import API_TOKENS

URL = "/api/v1/keys"


async def _status(client: aiohttp.ClientSession, url: str, token: str) -> int:
    async with client.get(url, headers=bearer(token)) as response:
        return response.status


async def test_a_cut_membership_refuses_the_members_older_tokens_there_only(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey, redis_client: Redis
):
    now = time.time()
    user, workspace, elsewhere = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    before = signing_key.token(user, wid=workspace, iat=round(now - 10, 3), sid=str(uuid.uuid4()))
    other_workspace = signing_key.token(user, wid=elsewhere, iat=round(now - 10, 3))
    colleague = signing_key.token(str(uuid.uuid4()), wid=workspace, iat=round(now - 10, 3))
    assert await _status(client, gateway.url + URL, before) == 200  # verified and cached

    await redis_client.set(member_revocation_key(workspace, user), f"{now - 5:.6f}", ex=60)

    assert await _status(client, gateway.url + URL, before) == 401
    # Minted after the cut (the new role, from a refresh): accepted; the same person elsewhere, and the
    # other members here, are not touched.
    assert (
        await _status(client, gateway.url + URL, signing_key.token(user, wid=workspace, iat=round(now - 4, 3))) == 200
    )
    assert await _status(client, gateway.url + URL, other_workspace) == 200
    assert await _status(client, gateway.url + URL, colleague) == 200


def _grant(signing_key: SigningKey, user: str, workspace: str, role: str, token_id: str) -> dict[str, Any]:
    return {
        "active": True,
        "token_id": token_id,
        "user_id": user,
        "workspace_id": workspace,
        "access_token": signing_key.token(user, wid=workspace, role=role, iat=round(time.time(), 3), tid=token_id),
        "rate_limit_per_minute": None,
        "cache_seconds": 60,
    }


def _forwarded_role(upstream: Upstream) -> str:
    authorization = {k.lower(): v for k, v in upstream.seen[-1].headers}["authorization"]
    claims = jwt.decode(authorization.removeprefix("Bearer "), options={"verify_signature": False})
    return str(claims["role"])


async def test_a_cut_membership_sends_a_cached_api_token_back_to_auth(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    redis_client: Redis,
):
    gw = await make_gateway(**API_TOKENS)
    user, workspace, token_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    token = "owr_" + uuid.uuid4().hex
    upstream.grants[token] = _grant(signing_key, user, workspace, "admin", token_id)
    assert await _status(client, gw.url + URL, token) == 200
    assert await _status(client, gw.url + URL, token) == 200
    assert upstream.introspections == 1  # cached
    assert _forwarded_role(upstream) == "admin"

    # The role is lowered: auth answers with the lower role from now on, and the cache is not trusted.
    await asyncio.sleep(0.01)
    await redis_client.set(member_revocation_key(workspace, user), f"{time.time():.6f}", ex=60)
    await asyncio.sleep(0.01)
    upstream.grants[token] = _grant(signing_key, user, workspace, "viewer", token_id)
    assert await _status(client, gw.url + URL, token) == 200
    assert upstream.introspections == 2
    assert _forwarded_role(upstream) == "viewer"
    assert await _status(client, gw.url + URL, token) == 200
    assert upstream.introspections == 2  # the new answer is cached again

    # The member is removed: auth says not active, and the very next request is refused.
    await redis_client.set(member_revocation_key(workspace, user), f"{time.time() + 0.001:.6f}", ex=60)
    del upstream.grants[token]
    assert await _status(client, gw.url + URL, token) == 401
    assert upstream.introspections == 3
