"""Account deletion asks keys to erase every solely-owned workspace first, and stops if it cannot.

The keys service is a `PeerStub` (a real HTTP server): these tests pin auth's side of the contract
in docs/architecture.md; the end-to-end test covers the real keys service.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Workspace
from owr_shared.jwt import JwksVerifier
from tests.auth.conftest import INTERNAL_TIMEOUT_SECONDS, login, registered_session
from tests.support.http import assert_problem, bearer
from tools.devinfra import free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_HEADERS = {"x-request-id": "delete-me-0001", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}


def delete_me(client, token: str):
    return client.delete("/api/v1/auth/me", headers={**bearer(token), **CALLER_HEADERS})


async def verify_for_keys(client, token: str) -> Any:
    """Verify as the keys service will: auth's JWKS, audience owr-keys, a service token."""

    async def fetch() -> dict[str, Any]:
        data: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
        return data

    keys = JwksVerifier(fetch, issuer="owr-auth", audience="owr-keys")
    return await keys.verify(token, expected_types=("service",))


async def add_workspace(db_session, user_id: uuid.UUID, role: str = "owner") -> uuid.UUID:
    workspace = Workspace(id=uuid.uuid4(), name="Team")
    db_session.add(workspace)
    await db_session.flush()
    db_session.add(Membership(user_id=user_id, workspace_id=workspace.id, role=role))
    await db_session.flush()
    return workspace.id


async def test_keys_is_asked_to_erase_each_solely_owned_workspace(client, keys_stub, db_session):
    user, pair = await registered_session(client)
    user_id, personal = uuid.UUID(user["id"]), uuid.UUID(user["workspace"]["id"])
    team = await add_workspace(db_session, user_id)
    # Workspaces the user shares with another owner, or only belongs to, keep their keys.
    other, _ = await registered_session(client)
    shared = await add_workspace(db_session, uuid.UUID(other["id"]))
    db_session.add(Membership(user_id=user_id, workspace_id=shared, role="owner"))
    db_session.add(Membership(user_id=user_id, workspace_id=uuid.UUID(other["workspace"]["id"]), role="member"))
    await db_session.flush()

    r = await delete_me(client, pair["access_token"])
    assert r.status_code == 204, r.text

    assert sorted(call.path for call in keys_stub.calls) == sorted(
        f"/internal/workspaces/{workspace_id}" for workspace_id in (personal, team)
    )
    for call in keys_stub.calls:
        assert call.method == "DELETE"
        assert call.headers["x-request-id"] == "delete-me-0001"
        version, trace_id, span_id, _ = call.headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", TRACE_ID)
        assert span_id != "00f067aa0ba902b7"  # auth's own span, in the caller's trace
        scheme, _, token = call.headers["authorization"].partition(" ")
        assert scheme == "Bearer"
        principal = await verify_for_keys(client, token)
        assert principal.subject == "auth"
        assert principal.scopes == frozenset({"workspaces:delete"})
        assert principal.expires_at - principal.issued_at <= 300
        assert abs(principal.issued_at - time.time()) < 5

    assert await db_session.get(User, user_id) is None
    assert await db_session.get(Workspace, personal) is None
    assert await db_session.get(Workspace, team) is None
    assert await db_session.get(Workspace, shared) is not None


async def test_a_fresh_request_id_is_forwarded_when_the_caller_sent_none(client, keys_stub):
    _, pair = await registered_session(client)
    r = await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    (call,) = keys_stub.calls
    assert call.headers["x-request-id"] == r.headers["x-request-id"]
    assert len(call.headers["traceparent"].split("-")) == 4


@pytest.mark.parametrize("status", [204, 404])
async def test_deleted_or_absent_in_keys_lets_the_account_go(client, keys_stub, db_session, status):
    user, pair = await registered_session(client)
    keys_stub.status = status
    assert (await delete_me(client, pair["access_token"])).status_code == 204
    assert len(keys_stub.calls) == 1
    assert await db_session.get(User, uuid.UUID(user["id"])) is None


async def assert_nothing_deleted(client, db_session, redis_client, user: dict[str, Any], pair: dict[str, Any]) -> None:
    user_id = uuid.UUID(user["id"])
    assert await db_session.get(User, user_id) is not None
    memberships = (await db_session.execute(select(Membership.workspace_id).where(Membership.user_id == user_id))).all()
    assert [row[0] for row in memberships] == [uuid.UUID(user["workspace"]["id"])]
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 0
    assert (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 200
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    await login(client, user["email"])


def assert_deletion_unavailable(r) -> None:
    body = assert_problem(r, 503)
    assert body["type"].endswith("/deletion-unavailable")
    assert r.headers["retry-after"] == "5"
    assert "Bearer" not in r.text
    assert "127.0.0.1" not in r.text


@pytest.mark.parametrize("status", [500, 503, 401, 403, 200, 302])
async def test_a_failing_keys_service_stops_the_deletion(client, keys_stub, db_session, redis_client, status):
    user, pair = await registered_session(client)
    keys_stub.status = status
    assert_deletion_unavailable(await delete_me(client, pair["access_token"]))
    assert len(keys_stub.calls) == 1
    await assert_nothing_deleted(client, db_session, redis_client, user, pair)

    # The keys side is idempotent: once it answers, the same request succeeds.
    keys_stub.status = 204
    assert (await delete_me(client, pair["access_token"])).status_code == 204


async def test_a_keys_service_that_hangs_stops_the_deletion(client, keys_stub, db_session, redis_client):
    user, pair = await registered_session(client)
    keys_stub.hang = True
    started = time.monotonic()
    assert_deletion_unavailable(await delete_me(client, pair["access_token"]))
    assert INTERNAL_TIMEOUT_SECONDS <= time.monotonic() - started < INTERNAL_TIMEOUT_SECONDS + 2
    assert len(keys_stub.calls) == 1
    await assert_nothing_deleted(client, db_session, redis_client, user, pair)


async def test_an_unreachable_keys_service_stops_the_deletion(app_factory, db_session, redis_client):
    async with app_factory(keys_url=f"http://127.0.0.1:{free_port()}") as client:
        user, pair = await registered_session(client)
        assert_deletion_unavailable(await delete_me(client, pair["access_token"]))
        await assert_nothing_deleted(client, db_session, redis_client, user, pair)


async def test_a_later_workspace_failing_keeps_every_auth_row(client, keys_stub, db_session, redis_client):
    user, pair = await registered_session(client)
    await add_workspace(db_session, uuid.UUID(user["id"]))
    keys_stub.status = 500
    assert_deletion_unavailable(await delete_me(client, pair["access_token"]))
    # It stopped at the first failure and no auth row went.
    assert len(keys_stub.calls) == 1
    assert await db_session.get(User, uuid.UUID(user["id"])) is not None
    count = len((await db_session.execute(select(Membership).where(Membership.user_id == uuid.UUID(user["id"])))).all())
    assert count == 2


async def test_no_service_token_in_logs(client, keys_stub, json_logs):
    _, pair = await registered_session(client)
    keys_stub.status = 500
    await delete_me(client, pair["access_token"])
    keys_stub.status = 204
    await delete_me(client, pair["access_token"])
    tokens = [call.headers["authorization"].partition(" ")[2] for call in keys_stub.calls]
    logs = json_logs.getvalue()
    assert "workspace_cleanup_failed" in logs
    assert "workspace_data_erased" in logs
    assert all(token not in logs for token in tokens)


async def test_usage_is_asked_too_with_its_own_audience(app_factory, keys_stub):
    # keys and usage both pointed at the one stub: two calls per workspace, one per audience.
    async with app_factory(usage_url=keys_stub.url) as client:
        user, pair = await registered_session(client)
        r = await delete_me(client, pair["access_token"])
        assert r.status_code == 204, r.text

    workspace = user["workspace"]["id"]
    assert [call.path for call in keys_stub.calls] == [f"/internal/workspaces/{workspace}"] * 2
    audiences = []
    for call in keys_stub.calls:
        token = call.headers["authorization"].partition(" ")[2]
        audiences.append(jwt.decode(token, options={"verify_signature": False})["aud"])
    assert audiences == ["owr-keys", "owr-usage"]
