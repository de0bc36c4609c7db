"""Account deletion ends every session first, then asks keys to erase each solely-owned workspace; the
sweep finishes what a peer that was away could not.

The keys service is a `PeerStub` (a real HTTP server): these tests pin auth's side of the contract
in docs/architecture.md; the end-to-end test covers the real keys service.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, select

from owr_auth.sessions.errors import RevocationUnavailable
from owr_auth.users import service as user_service
from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Workspace
from owr_auth.workspaces.service import MAX_ORPHANS_PER_SWEEP
from owr_shared.jwt import JwksVerifier
from tests.auth.conftest import (
    GATEWAY_SECRET,
    INTERNAL_TIMEOUT_SECONDS,
    PASSWORD,
    SWEEPER_SECRET,
    basic,
    registered_session,
)
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
    # Workspaces another person owns, of which the user is only a member (or an admin), keep their keys.
    other, _ = await registered_session(client)
    shared = await add_workspace(db_session, uuid.UUID(other["id"]))
    db_session.add(Membership(user_id=user_id, workspace_id=shared, role="admin"))
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


async def sweep(client) -> Any:
    """The worker's cron call: finish interrupted deletions, erase orphans."""
    return await client.post("/internal/workspaces/sweep", headers=basic("sweeper", SWEEPER_SECRET))


async def assert_unusable_and_marked(client, db_session, user: dict[str, Any], pair: dict[str, Any]) -> None:
    """The account is gone for every token and for sign-in, while its rows wait for the peers' erasure."""
    user_id, workspace_id = uuid.UUID(user["id"]), uuid.UUID(user["workspace"]["id"])
    row = await db_session.get(User, user_id, populate_existing=True)
    assert row is not None
    assert row.deleted_at is not None
    workspace = await db_session.get(Workspace, workspace_id, populate_existing=True)
    assert workspace is not None
    assert workspace.deleted_at is not None
    assert (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 401
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401
    signed_in = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert signed_in.status_code == 401


async def assert_gone(db_session, user: dict[str, Any]) -> None:
    assert await db_session.get(User, uuid.UUID(user["id"]), populate_existing=True) is None
    assert await db_session.get(Workspace, uuid.UUID(user["workspace"]["id"]), populate_existing=True) is None


@pytest.mark.parametrize("status", [500, 503, 401, 403, 200, 302])
async def test_a_failing_keys_service_leaves_the_erasure_to_the_sweep(client, keys_stub, db_session, status):
    user, pair = await registered_session(client)
    keys_stub.status = status
    r = await delete_me(client, pair["access_token"])
    assert r.status_code == 202, r.text
    assert len(keys_stub.calls) == 1
    await assert_unusable_and_marked(client, db_session, user, pair)

    # Still away: the sweep says so (503) and keeps the marks.
    assert_problem(await sweep(client), 503)
    await assert_unusable_and_marked(client, db_session, user, pair)

    # The keys side is idempotent: once it answers, the sweep finishes the deletion.
    keys_stub.status = 204
    r = await sweep(client)
    assert r.status_code == 200, r.text
    assert r.json() == {"pending_finished": 1, "pending_left": 0, "orphans_erased": 0}
    await assert_gone(db_session, user)


async def test_a_keys_service_that_hangs_does_not_hold_the_deletion(client, keys_stub, db_session):
    user, pair = await registered_session(client)
    keys_stub.hang = True
    started = time.monotonic()
    assert (await delete_me(client, pair["access_token"])).status_code == 202
    assert INTERNAL_TIMEOUT_SECONDS <= time.monotonic() - started < INTERNAL_TIMEOUT_SECONDS + 2
    assert len(keys_stub.calls) == 1
    await assert_unusable_and_marked(client, db_session, user, pair)


async def test_an_unreachable_keys_service_leaves_the_erasure_to_the_sweep(app_factory, db_session):
    async with app_factory(keys_url=f"http://127.0.0.1:{free_port()}") as client:
        user, pair = await registered_session(client)
        assert (await delete_me(client, pair["access_token"])).status_code == 202
        await assert_unusable_and_marked(client, db_session, user, pair)


async def test_a_later_workspace_failing_keeps_every_auth_row_marked(client, keys_stub, db_session):
    user, pair = await registered_session(client)
    team = await add_workspace(db_session, uuid.UUID(user["id"]))
    keys_stub.status = 500
    assert (await delete_me(client, pair["access_token"])).status_code == 202
    # It stopped at the first failure; both workspaces wait for the sweep.
    assert len(keys_stub.calls) == 1
    assert (await db_session.get(Workspace, team, populate_existing=True)).deleted_at is not None
    count = len((await db_session.execute(select(Membership).where(Membership.user_id == uuid.UUID(user["id"])))).all())
    assert count == 2


async def test_a_failed_revocation_changes_nothing(client, keys_stub, db_session, redis_client, monkeypatch):
    """Redis refusing the session denylist fails the deletion closed before anything is marked: 503."""
    user, pair = await registered_session(client)

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise RevocationUnavailable()

    monkeypatch.setattr(user_service, "end_every_session", refuse)
    assert_problem(await delete_me(client, pair["access_token"]), 503)
    assert keys_stub.calls == []
    row = await db_session.get(User, uuid.UUID(user["id"]), populate_existing=True)
    assert row is not None
    assert row.deleted_at is None
    assert (await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 200


async def test_the_sweep_erases_workspaces_auth_does_not_know(client, keys_stub):
    user, _ = await registered_session(client)
    orphan = str(uuid.uuid4())
    keys_stub.stored = [user["workspace"]["id"], orphan]
    r = await sweep(client)
    assert r.status_code == 200, r.text
    assert r.json()["orphans_erased"] == 1
    assert [(c.method, c.path) for c in keys_stub.calls] == [
        ("GET", "/internal/workspaces"),
        ("DELETE", f"/internal/workspaces/{orphan}"),
    ]


async def test_the_sweep_needs_its_scope(client):
    assert_problem(await client.post("/internal/workspaces/sweep", headers=basic("gateway", GATEWAY_SECRET)), 403)
    assert_problem(await client.post("/internal/workspaces/sweep", headers=basic("sweeper", "wrong" * 10)), 401)
    assert_problem(await client.post("/internal/workspaces/sweep"), 401)


async def test_no_service_token_in_logs(client, keys_stub, json_logs):
    _, pair = await registered_session(client)
    keys_stub.status = 500
    await delete_me(client, pair["access_token"])
    keys_stub.status = 204
    await sweep(client)
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


async def test_the_sweep_erases_at_most_its_cap_of_orphans(client, keys_stub):
    """A brake: an auth on the wrong database would otherwise erase every tenant of every peer at once."""
    await registered_session(client)
    keys_stub.stored = sorted(str(uuid.uuid4()) for _ in range(MAX_ORPHANS_PER_SWEEP + 50))
    r = await sweep(client)
    assert r.status_code == 200, r.text
    assert r.json()["orphans_erased"] == MAX_ORPHANS_PER_SWEEP
    assert sum(call.method == "DELETE" for call in keys_stub.calls) == MAX_ORPHANS_PER_SWEEP


async def test_an_auth_that_knows_no_workspace_erases_no_orphan(client, keys_stub, db_session):
    """An empty (or wrong) auth database is a misconfiguration, not a world without tenants."""
    await db_session.execute(delete(Workspace))  # in the test's transaction, rolled back after it
    await db_session.flush()
    keys_stub.stored = [str(uuid.uuid4())]
    r = await sweep(client)
    assert r.status_code == 200, r.text
    assert r.json()["orphans_erased"] == 0
    assert [call.method for call in keys_stub.calls] == []
