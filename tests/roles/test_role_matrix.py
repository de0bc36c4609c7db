"""The role matrix (issue 16): every public route x {owner, admin, member, viewer, non-member}.

The routes are read from the public API document as the gateway merges it (the services' own OpenAPI
documents, filtered by the gateway's routing table), so a new route fails this test until it says here
which role it needs. A role below the route's is a 403 problem; a member who is not in the workspace a
route names (a non-member) gets 404. Each call runs in a savepoint rolled back after it, so no call sees
another's effects (a removal, a deletion, a transfer).

Roles: `owner` > `admin` > `member` > `viewer` (DESIGN §12, the issue's table). `self` marks a route about
the caller themselves (their account, sessions, API tokens, workspaces list): every role may; `anonymous`
a route before sign-in.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from owr_gateway.openapi import merge
from owr_gateway.routing import RouteTable
from owr_shared.auth import role_rank
from tests.auth.conftest import PASSWORD
from tests.auth.teams import Person, invitation_token, invite, new_workspace, person, switch, verified
from tests.keys.conftest import new_secret
from tests.support.http import bearer

ROLES = ("owner", "admin", "member", "viewer")
Body = Callable[["Seed"], Any]


@dataclass(frozen=True)
class Rule:
    """The least role a route needs; how to call it; whether it names an object of the workspace (so a
    non-member gets 404); whether an allowed call succeeds (a random id, a bad token, does not)."""

    minimum: str
    body: Body | None = None
    scoped: bool = False
    succeeds: bool = True
    query: dict[str, str] = field(default_factory=dict)


def scoped(minimum: str, body: Body | None = None, *, succeeds: bool = True) -> Rule:
    return Rule(minimum, body, scoped=True, succeeds=succeeds)


CHANNEL = {"type": "webhook", "name": "ops", "url": "https://hooks.example.com/owr"}
BUDGET = {"name": "team", "scope": {"type": "workspace"}, "amount_usd": "10", "period": "weekly"}

MATRIX: dict[tuple[str, str], Rule] = {
    # Before sign-in.
    ("GET", "/.well-known/jwks.json"): Rule("anonymous"),
    ("POST", "/api/v1/auth/register"): Rule(
        "anonymous", lambda s: {"email": f"new.{secrets.token_hex(4)}@example.com", "password": PASSWORD}
    ),
    ("POST", "/api/v1/auth/login"): Rule("anonymous", lambda s: {"email": s.owner.email, "password": PASSWORD}),
    ("POST", "/api/v1/auth/refresh"): Rule("anonymous", lambda s: {"refresh_token": s.owner.refresh}),
    ("POST", "/api/v1/auth/logout"): Rule("anonymous", lambda s: {"refresh_token": s.owner.refresh}),
    ("POST", "/api/v1/auth/password-reset"): Rule("anonymous", lambda s: {"email": s.owner.email}),
    ("POST", "/api/v1/auth/password-reset/confirm"): Rule(
        "anonymous",
        lambda s: {"token": "owrp_" + "A" * 43, "new_password": "another long passphrase 9"},
        succeeds=False,
    ),
    ("POST", "/api/v1/auth/verify-email"): Rule("anonymous", lambda s: {"token": "owrv_" + "A" * 43}, succeeds=False),
    # The second step of a two-factor sign-in (nobody here has it on: no code is a 422).
    ("POST", "/api/v1/auth/login/mfa"): Rule("anonymous", lambda s: {"challenge": "owrm_" + "A" * 43}, succeeds=False),
    # The caller themselves.
    ("GET", "/api/v1/auth/me"): Rule("self"),
    ("DELETE", "/api/v1/auth/me"): Rule("self"),
    ("PUT", "/api/v1/auth/me/password"): Rule(
        "self", lambda s: {"current_password": PASSWORD, "new_password": "another long passphrase 9"}
    ),
    ("DELETE", "/api/v1/auth/me/sessions"): Rule("self"),
    # 202, or 409 for an address verified already.
    ("POST", "/api/v1/auth/verify-email/resend"): Rule("self", succeeds=False),
    ("GET", "/api/v1/auth/sessions"): Rule("self"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"): Rule("self", succeeds=False),
    ("POST", "/api/v1/auth/sessions/revoke-all"): Rule("self", lambda s: {"keep_current": True}),
    ("GET", "/api/v1/auth/2fa"): Rule("self"),
    ("POST", "/api/v1/auth/2fa/setup"): Rule("self", lambda s: {"password": PASSWORD}),
    # Without a setup (each call's savepoint is rolled back) enable is a 409, and so is disable while off.
    ("POST", "/api/v1/auth/2fa/enable"): Rule("self", lambda s: {"code": "123456"}, succeeds=False),
    ("POST", "/api/v1/auth/2fa/disable"): Rule("self", lambda s: {"code": "123456"}, succeeds=False),
    ("POST", "/api/v1/auth/2fa/recovery-codes"): Rule("self", lambda s: {"code": "123456"}, succeeds=False),
    ("GET", "/api/v1/tokens"): Rule("self"),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule("self", succeeds=False),
    ("POST", "/api/v1/workspaces"): Rule("self", lambda s: {"name": "Another"}),
    ("GET", "/api/v1/workspaces"): Rule("self"),
    ("POST", "/api/v1/invitations/accept"): Rule("self", lambda s: {"token": "owri_" + "A" * 43}, succeeds=False),
    # Acting in the workspace: the JWT's role there.
    ("POST", "/api/v1/auth/switch"): scoped("viewer", lambda s: {"workspace_id": s.workspace_id}),
    ("POST", "/api/v1/tokens"): Rule("member", lambda s: {"name": "script"}),
    ("PATCH", "/api/v1/workspaces/{workspace_id}"): scoped("admin", lambda s: {"name": "Renamed"}),
    ("DELETE", "/api/v1/workspaces/{workspace_id}"): scoped("owner"),
    ("GET", "/api/v1/workspaces/{workspace_id}/audit"): scoped("admin"),
    ("POST", "/api/v1/workspaces/{workspace_id}/invitations"): scoped(
        "admin", lambda s: {"email": "guest@example.com", "role": "viewer"}
    ),
    ("GET", "/api/v1/workspaces/{workspace_id}/invitations"): scoped("admin"),
    ("DELETE", "/api/v1/workspaces/{workspace_id}/invitations/{invitation_id}"): scoped("admin"),
    ("GET", "/api/v1/workspaces/{workspace_id}/members"): scoped("viewer"),
    ("PATCH", "/api/v1/workspaces/{workspace_id}/members/{user_id}"): scoped("admin", lambda s: {"role": "member"}),
    ("DELETE", "/api/v1/workspaces/{workspace_id}/members/{user_id}"): scoped("admin"),
    ("POST", "/api/v1/workspaces/{workspace_id}/transfer"): scoped("owner", lambda s: {"user_id": s.target.id}),
    ("POST", "/api/v1/keys"): Rule("member", lambda s: {"name": "another", "key": new_secret()}),
    ("GET", "/api/v1/keys"): Rule("viewer"),
    ("GET", "/api/v1/keys/{key_id}"): scoped("viewer"),
    ("PATCH", "/api/v1/keys/{key_id}"): scoped("admin", lambda s: {"name": "renamed"}),
    ("DELETE", "/api/v1/keys/{key_id}"): scoped("admin"),
    ("GET", "/api/v1/keys/{key_id}/audit"): scoped("viewer"),
    ("POST", "/api/v1/keys/{key_id}/sync"): scoped("member"),
    # usage's routes under a key (issue 17): the seeded key has no figures in usage yet, so an allowed call is a 404.
    ("GET", "/api/v1/keys/{key_id}/upstream"): scoped("viewer", succeeds=False),
    ("POST", "/api/v1/keys/{key_id}/enable-upstream"): scoped("admin", succeeds=False),
    ("POST", "/api/v1/keys/{key_id}/disable-upstream"): scoped("admin", lambda s: {"reason": "leaked"}, succeeds=False),
    ("POST", "/api/v1/keys/{key_id}/apply-limit"): scoped(
        "admin", lambda s: {"amount_usd": "5", "reset": "monthly"}, succeeds=False
    ),
    ("PUT", "/api/v1/keys/{key_id}/kill-switch"): scoped("admin", lambda s: {"anomaly_score": 5}, succeeds=False),
    ("GET", "/api/v1/usage/summary"): Rule("viewer"),
    ("GET", "/api/v1/usage/daily"): Rule("viewer"),
    ("GET", "/api/v1/usage/export"): Rule("viewer"),
    ("GET", "/api/v1/usage/accounts"): Rule("viewer"),
    ("GET", "/api/v1/metrics"): Rule("viewer"),
    ("GET", "/api/v1/usage/keys/{key_id}"): scoped("viewer", succeeds=False),  # no figures yet: 404
    ("GET", "/api/v1/alerts"): Rule("viewer"),
    ("GET", "/api/v1/insights/hygiene"): Rule("viewer"),
    ("GET", "/api/v1/insights/anomalies"): Rule("viewer"),
    ("GET", "/api/v1/insights/prices"): Rule("viewer"),
    ("GET", "/api/v1/insights/reconciliation"): Rule("viewer"),
    ("POST", "/api/v1/channels"): Rule("admin", lambda s: CHANNEL),
    ("GET", "/api/v1/channels"): Rule("viewer"),
    ("GET", "/api/v1/channels/{channel_id}"): scoped("viewer"),
    ("PATCH", "/api/v1/channels/{channel_id}"): scoped("admin", lambda s: {"name": "renamed"}),
    ("DELETE", "/api/v1/channels/{channel_id}"): scoped("admin"),
    ("GET", "/api/v1/channels/{channel_id}/deliveries"): scoped("viewer"),
    ("POST", "/api/v1/channels/{channel_id}/deliveries/{delivery_id}/retry"): scoped("admin", succeeds=False),
    ("POST", "/api/v1/channels/{channel_id}/rotate-secret"): scoped("admin"),
    ("POST", "/api/v1/channels/{channel_id}/test"): scoped("admin"),
    # The matrix's channel is a webhook: nothing to confirm (409).
    ("POST", "/api/v1/channels/{channel_id}/resend-confirmation"): scoped("admin", succeeds=False),
    # An email channel's emailed link: no sign-in (the recipient may have no account).
    ("POST", "/api/v1/channel-confirmations"): Rule(
        "anonymous", lambda s: {"token": "owrc_" + "0" * 32 + "A" * 43}, succeeds=False
    ),
    ("POST", "/api/v1/budgets"): Rule("admin", lambda s: BUDGET),
    ("GET", "/api/v1/budgets"): Rule("viewer"),
    ("GET", "/api/v1/budgets/{budget_id}"): scoped("viewer"),
    ("PATCH", "/api/v1/budgets/{budget_id}"): scoped("admin", lambda s: {"amount_usd": "20"}),
    ("DELETE", "/api/v1/budgets/{budget_id}"): scoped("admin"),
    ("GET", "/api/v1/alert-rules"): Rule("viewer"),
    ("PUT", "/api/v1/alert-rules"): Rule("admin", lambda s: {"items": [{"rule": "key.expiring", "enabled": False}]}),
}


@dataclass
class Seed:
    """A workspace with one member per role (switched into it), a member to act on, an outsider, and one
    object of each kind the routes name."""

    workspace_id: str
    actors: dict[str, Person]
    target: Person
    outsider: Person
    ids: dict[str, str]

    @property
    def owner(self) -> Person:
        return self.actors["owner"]


def public_routes(system: dict[str, FastAPI], routes: RouteTable) -> set[tuple[str, str]]:
    """Every (method, path) of the public API, as the gateway's merged document lists it."""
    document = merge({name: system[name].openapi() for name in ("auth", "keys", "usage")}, routes)
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_every_public_route_is_in_the_matrix(system, route_table):
    routes = public_routes(system, route_table)
    missing = sorted(routes - MATRIX.keys())
    assert not missing, f"say which role these routes need (tests/roles/test_role_matrix.py MATRIX): {missing}"
    assert not sorted(MATRIX.keys() - routes), "the matrix names routes the API no longer has"


async def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 300, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def seed(system_client: httpx.AsyncClient, db_session, auth_app: FastAPI) -> Seed:
    client = system_client
    owner = await verified(db_session, await person(client))  # channels need a verified address
    workspace_id = await new_workspace(client, owner)
    await switch(client, owner, workspace_id)
    actors = {"owner": owner}
    for role in ("admin", "member", "viewer", "target"):
        joiner = await person(client)
        invitation = await invite(client, owner, workspace_id, joiner.email, "viewer" if role == "target" else role)
        token = await invitation_token(db_session, auth_app, invitation["id"])
        await verified(db_session, joiner)
        await _ok(await client.post("/api/v1/invitations/accept", headers=joiner.headers, json={"token": token}))
        actors[role] = await switch(client, joiner, workspace_id)
    target = actors.pop("target")
    key = await _ok(await client.post("/api/v1/keys", headers=owner.headers, json={"name": "k", "key": new_secret()}))
    channel = await _ok(await client.post("/api/v1/channels", headers=owner.headers, json=CHANNEL))
    budget = await _ok(await client.post("/api/v1/budgets", headers=owner.headers, json=BUDGET))
    invitation = await invite(client, owner, workspace_id, "pending@example.com", "viewer")
    ids = {
        "workspace_id": workspace_id,
        "key_id": key["id"],
        "channel_id": channel["id"],
        "budget_id": budget["id"],
        "invitation_id": invitation["id"],
        "user_id": target.id,
        "delivery_id": str(uuid.uuid4()),
        "token_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
    }
    # A verified person acting in their own workspace (a token minted after the verification says so).
    outsider = await verified(db_session, await person(client))
    return Seed(workspace_id, actors, target, await switch(client, outsider, outsider.personal), ids)


async def _call(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    method: str,
    path: str,
    rule: Rule,
    seed: Seed,
    who: Person | None,
) -> httpx.Response:
    """One call, undone afterwards (its savepoint is rolled back)."""
    body = rule.body(seed) if rule.body else None
    headers = bearer(who.access) if who else {}
    savepoint = await connection.begin_nested()
    try:
        return await client.request(method, path.format(**seed.ids), headers=headers, json=body, params=rule.query)
    finally:
        await savepoint.rollback()


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=[f"{m} {p}" for m, p in sorted(MATRIX)])
async def test_each_role_gets_what_its_role_allows(system_client, db_connection, seed, method, path):
    rule = MATRIX[(method, path)]
    if rule.minimum == "anonymous":
        r = await _call(system_client, db_connection, method, path, rule, seed, None)
        assert r.status_code not in (401, 403), r.text
        assert r.status_code < (400 if rule.succeeds else 500), r.text
        return
    for role in ROLES:
        r = await _call(system_client, db_connection, method, path, rule, seed, seed.actors[role])
        allowed = rule.minimum == "self" or role_rank(role) >= role_rank(rule.minimum)
        if allowed:
            assert r.status_code not in (401, 403), (role, r.status_code, r.text)
            assert r.status_code < (400 if rule.succeeds else 500), (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    r = await _call(system_client, db_connection, method, path, rule, seed, seed.outsider)
    if rule.scoped:
        assert r.status_code == 404, ("non-member", r.status_code, r.text)
    else:
        assert r.status_code not in (401, 403), ("non-member", r.status_code, r.text)
        assert r.status_code < 500, ("non-member", r.status_code, r.text)
