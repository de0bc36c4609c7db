"""Finding 10: a revocation and an introspection racing it must never leave a revoked token cached.

The revocation's transaction is held open here while the gateway introspects (over HTTP, on the app's
own pool), as a slow commit would hold it; then it commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid

from owr_auth.api_tokens import service as token_service
from owr_auth.api_tokens import token_format
from owr_shared.auth import UserCaller
from owr_shared.db import transaction
from tests.auth.conftest import API_TOKEN_PEPPER, registered_session
from tests.auth.test_api_tokens import introspect, make_token


async def _token(committed_client) -> tuple[UserCaller, uuid.UUID, str, bytes]:
    user, pair = await registered_session(committed_client)
    created = await make_token(committed_client, pair["access_token"])
    hashed = hmac.new(API_TOKEN_PEPPER.encode(), created["token"].encode(), hashlib.sha256).digest()
    caller = UserCaller(user_id=user["id"], workspace_id=uuid.UUID(user["workspace"]["id"]))
    return caller, uuid.UUID(created["id"]), created["token"], hashed


async def test_an_introspection_during_the_revocation_answers_inactive(service_app, committed_client, redis_client):
    caller, token_id, token, _ = await _token(committed_client)
    async with transaction(service_app.state.sessionmaker) as revoking:
        await token_service.revoke(revoking, redis_client, user=caller, token_id=token_id)
        racing = asyncio.create_task(introspect(committed_client, token))
        await asyncio.sleep(0.3)  # it has read the token as live and waits on the revocation's row lock
    answer = (await racing).json()
    assert answer["active"] is False  # before the fix: active, and the gateway cached it for 60 s
    assert answer["access_token"] is None


async def test_the_gateway_cache_is_purged_after_the_commit(service_app, committed_client, redis_client):
    caller, token_id, _, hashed = await _token(committed_client)
    key = token_format.cache_key(hashed)
    async with transaction(service_app.state.sessionmaker) as revoking:
        await token_service.revoke(revoking, redis_client, user=caller, token_id=token_id)
        # An introspection that read the token before the commit, cached by the gateway meanwhile.
        await redis_client.set(key, b"cached introspection", ex=60)
    assert await redis_client.get(key) is None


async def test_a_rolled_back_revocation_leaves_the_cache_alone(service_app, committed_client, redis_client):
    caller, token_id, token, hashed = await _token(committed_client)
    key = token_format.cache_key(hashed)
    await redis_client.set(key, b"cached introspection", ex=60)
    try:
        async with transaction(service_app.state.sessionmaker) as revoking:
            await token_service.revoke(revoking, redis_client, user=caller, token_id=token_id)
            raise RuntimeError("the request failed after the revocation")
    except RuntimeError:
        pass
    assert await redis_client.get(key) == b"cached introspection"
    assert (await introspect(committed_client, token)).json()["active"] is True
