"""Object-level authorisation and token checks: who may reach which route, with which token."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.keys.conftest import ALL_SCOPES, store_key
from tests.support.http import assert_problem, bearer
from tests.support.tenants import refused_user_headers
from tests.support.tokens import TestKeyring

# Every public route that takes a key id, with a body that would otherwise succeed.
ID_ROUTES = [
    ("GET", "/api/v1/keys/{id}", None),
    ("PATCH", "/api/v1/keys/{id}", {"name": "stolen"}),
    ("DELETE", "/api/v1/keys/{id}", None),
    ("POST", "/api/v1/keys/{id}/sync", None),
    ("GET", "/api/v1/keys/{id}/audit", None),
]
PUBLIC_ROUTES = [("POST", "/api/v1/keys", {"name": "x", "key": "sk-or-v1-" + "a" * 64}), ("GET", "/api/v1/keys", None)]
PUBLIC_ROUTES += ID_ROUTES
STATUS_BODY = {"status": "valid", "last_synced_at": "2026-01-01T00:00:00Z"}
UPSTREAM_BODY = {
    "action": "upstream_disabled",
    "action_id": "6f1c3e8a-4d2b-4a9e-8c7f-0e1d2c3b4a59",
    "reason": "budget exceeded",
    "source": "budget",
}
INTERNAL_ROUTES = [
    ("GET", "/internal/keys/due", None, "keys:due"),
    ("POST", "/internal/keys/{id}/reveal", None, "keys:reveal"),
    ("POST", "/internal/keys/{id}/status", STATUS_BODY, "keys:status"),
    ("POST", "/internal/keys/reveal", {"ids": ["{id}"]}, "keys:reveal"),
    ("POST", "/internal/keys/status", {"items": [{**STATUS_BODY, "id": "{id}"}]}, "keys:status"),
    ("POST", "/internal/keys/{id}/upstream-audit", UPSTREAM_BODY, "keys:status"),
    ("DELETE", "/internal/workspaces/{wid}", None, "workspaces:delete"),
]


def _body(body: Any, key_id: str) -> Any:
    """The request body with the `{id}` placeholder filled in (batch bodies name the key inside)."""
    return None if body is None else json.loads(json.dumps(body).replace("{id}", key_id))


def _url(template: str, key_id: str, workspace_id: str = "") -> str:
    return template.replace("{id}", key_id).replace("{wid}", workspace_id or str(uuid.uuid4()))


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES)
async def test_another_workspaces_key_is_404_on_every_route(client, alice, bob, method, template, body):
    alices = await store_key(client, alice)
    r = await client.request(method, _url(template, alices["id"]), headers=bob.headers, json=body)
    problem = assert_problem(r, 404)
    assert problem["type"].endswith("/key-not-found")
    # And alice's key is untouched.
    r = await client.get(f"/api/v1/keys/{alices['id']}", headers=alice.headers)
    assert r.status_code == 200
    assert r.json() == alices
    audit = (await client.get(f"/api/v1/keys/{alices['id']}/audit", headers=alice.headers)).json()
    assert [e["action"] for e in audit["items"]] == ["created"]


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES)
async def test_unknown_key_id_is_404(client, alice, method, template, body):
    r = await client.request(method, _url(template, str(uuid.uuid4())), headers=alice.headers, json=body)
    assert_problem(r, 404)


async def test_lists_never_contain_another_workspaces_keys(client, alice, bob):
    mine = {(await store_key(client, alice))["id"] for _ in range(3)}
    theirs = {(await store_key(client, bob))["id"] for _ in range(2)}
    r = await client.get("/api/v1/keys", headers=alice.headers, params={"per_page": 250})
    assert {k["id"] for k in r.json()["items"]} == mine
    assert r.json()["total"] == 3
    r = await client.get("/api/v1/keys", headers=bob.headers, params={"per_page": 250})
    assert {k["id"] for k in r.json()["items"]} == theirs
    assert r.json()["total"] == 2


@pytest.mark.parametrize(("method", "template", "body"), PUBLIC_ROUTES)
async def test_public_routes_need_a_valid_access_token(client, alice, keyring, service_headers, method, template, body):
    url = _url(template, str(uuid.uuid4()))
    now = int(time.time())
    refusals = [
        *refused_user_headers(keyring, alice, service_headers),
        bearer(keyring.access_token(alice.user_id, alice.workspace_id, exp=now + 3600)),  # lifetime > 15 min
        bearer(keyring.access_token(alice.user_id, alice.workspace_id, typ="refresh")),
    ]
    for headers in refusals:
        assert_problem(await client.request(method, url, headers=headers, json=body), 401)


@pytest.mark.parametrize(("method", "template", "body"), PUBLIC_ROUTES)
async def test_a_token_without_a_workspace_is_403(client, keyring, method, template, body):
    for wid in (None, "not-a-uuid"):
        headers = bearer(keyring.access_token(str(uuid.uuid4()), wid))
        r = await client.request(method, _url(template, str(uuid.uuid4())), headers=headers, json=body)
        assert assert_problem(r, 403)["type"].endswith("/workspace-required")


@pytest.mark.parametrize(("method", "template", "body", "scope"), INTERNAL_ROUTES)
async def test_internal_routes_refuse_user_tokens_with_401(client, alice, method, template, body, scope):
    key = await store_key(client, alice)
    r = await client.request(
        method, _url(template, key["id"], alice.workspace_id), headers=alice.headers, json=_body(body, key["id"])
    )
    assert_problem(r, 401)
    assert_problem(await client.request(method, _url(template, key["id"]), json=_body(body, key["id"])), 401)


@pytest.mark.parametrize(("method", "template", "body", "scope"), INTERNAL_ROUTES)
async def test_internal_routes_need_their_scope(client, alice, service_headers, method, template, body, scope):
    key = await store_key(client, alice)
    url = _url(template, key["id"], alice.workspace_id)
    others = tuple(s for s in ALL_SCOPES if s != scope)
    r = await client.request(method, url, headers=service_headers(*others), json=_body(body, key["id"]))
    problem = assert_problem(r, 403)
    assert problem["type"].endswith("/insufficient-scope")
    assert scope in r.headers["www-authenticate"]
    # The key is still there: nothing happened.
    assert (await client.get(f"/api/v1/keys/{key['id']}", headers=alice.headers)).status_code == 200


@pytest.mark.parametrize(("method", "template", "body", "scope"), INTERNAL_ROUTES)
async def test_internal_routes_refuse_service_tokens_for_another_audience(
    client, alice, service_headers, method, template, body, scope
):
    key = await store_key(client, alice)
    url = _url(template, key["id"], alice.workspace_id)
    for overrides in ({"aud": "owr-usage"}, {"aud": "owr-api"}, {"typ": "access"}, {"iss": "owr-gateway"}):
        assert_problem(
            await client.request(method, url, headers=service_headers(scope, **overrides), json=_body(body, key["id"])),
            401,
        )


@pytest.mark.parametrize(("method", "template", "body", "scope"), INTERNAL_ROUTES)
async def test_internal_routes_accept_their_scope(client, alice, service_headers, method, template, body, scope):
    key = await store_key(client, alice)
    r = await client.request(
        method,
        _url(template, key["id"], alice.workspace_id),
        headers=service_headers(scope),
        json=_body(body, key["id"]),
    )
    assert r.status_code in (200, 204), r.text


async def test_a_token_signed_by_an_unknown_key_is_401(client, alice):

    stranger = TestKeyring(service_audience="owr-keys", default_scopes=ALL_SCOPES)
    headers = bearer(stranger.access_token(alice.user_id, alice.workspace_id))
    assert_problem(await client.get("/api/v1/keys", headers=headers), 401)
    headers = bearer(stranger.service_token())
    assert_problem(await client.get("/internal/keys/due", headers=headers), 401)


# --- API-token callers: what their token's scopes name, and nothing more -------------------------------

SCOPE_OF_ROUTE = {
    ("GET", "/api/v1/keys"): "keys:read",
    ("GET", "/api/v1/keys/{id}"): "keys:read",
    ("GET", "/api/v1/keys/{id}/audit"): "keys:read",
    ("POST", "/api/v1/keys"): "keys:write",
    ("PATCH", "/api/v1/keys/{id}"): "keys:write",
    ("DELETE", "/api/v1/keys/{id}"): "keys:write",
    ("POST", "/api/v1/keys/{id}/sync"): "keys:sync",
}


def token_caller(keyring, tenant, *scopes: str) -> dict[str, str]:
    """The JWT auth mints for an API token of `tenant` with `scopes` (it carries `tid` and `scope`)."""
    claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
    return bearer(keyring.access_token(tenant.user_id, tenant.workspace_id, **claims))


@pytest.mark.parametrize(("method", "template", "body"), PUBLIC_ROUTES)
async def test_an_api_token_needs_the_routes_scope(client, alice, keyring, method, template, body):
    key = await store_key(client, alice)
    needed = SCOPE_OF_ROUTE[(method, template)]
    others = [s for s in ("keys:read", "keys:write", "keys:sync", "usage:read") if s != needed]
    r = await client.request(
        method, _url(template, key["id"]), headers=token_caller(keyring, alice, *others), json=body
    )
    problem = assert_problem(r, 403)
    assert problem["type"].endswith("/insufficient-scope")
    assert needed in problem["detail"]
    r = await client.request(method, _url(template, key["id"]), headers=token_caller(keyring, alice, needed), json=body)
    assert r.status_code < 400, r.text


async def test_an_api_token_sees_only_its_own_workspace(client, alice, bob, keyring):
    key = await store_key(client, alice)
    r = await client.get(f"/api/v1/keys/{key['id']}", headers=token_caller(keyring, bob, "keys:read"))
    assert_problem(r, 404)
    listing = await client.get("/api/v1/keys", headers=token_caller(keyring, bob, "keys:read"))
    assert listing.json()["items"] == []
