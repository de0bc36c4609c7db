"""Who may reach which route, with which token; another workspace's key is a 404."""

from __future__ import annotations

import uuid

import pytest

from tests.support.http import assert_problem, bearer
from tests.support.tenants import refused_user_headers
from tests.support.tokens import TestKeyring
from tests.usage.conftest import ALL_SCOPES, at, days_ago, item, snapshot

SNAPSHOTS = {
    "items": [
        {
            "key_id": str(uuid.uuid4()),
            "workspace_id": str(uuid.uuid4()),
            "observed_at": "2026-01-01T00:00:00Z",
            "snapshot": {"usage": 1, "usage_daily": 0},
        }
    ]
}
CREDITS = {
    "workspace_id": str(uuid.uuid4()),
    "observed_at": "2026-01-01T00:00:00Z",
    "total_credits": 1,
    "total_usage": 0,
}
KEYS = {"workspace_id": str(uuid.uuid4()), "observed_at": "2026-01-01T00:00:00Z", "keys": []}
ACTIVITY = {
    "workspace_id": str(uuid.uuid4()),
    "observed_at": "2026-01-01T00:00:00Z",
    "api_key_hash": "ab" * 32,
    "dates": [],
    "rows": [],
}
KEY_STATUS = {
    "items": [
        {
            "key_id": str(uuid.uuid4()),
            "workspace_id": str(uuid.uuid4()),
            "status": "valid",
            "observed_at": "2026-01-01T00:00:00Z",
        }
    ]
}
INTERNAL_ROUTES = [
    ("POST", "/internal/snapshots", SNAPSHOTS, "usage:ingest"),
    ("POST", "/internal/key-status", KEY_STATUS, "usage:ingest"),
    ("POST", "/internal/digests", {"kind": "weekly", "at": "2026-01-01T00:00:00Z"}, "alerts:deliver"),
    ("POST", "/internal/price-drift", {"at": "2026-01-01T00:00:00Z"}, "alerts:deliver"),
    ("POST", "/internal/accounts/{id}/credits", CREDITS, "usage:ingest"),
    ("PUT", "/internal/accounts/{id}/keys", KEYS, "usage:ingest"),
    ("PUT", "/internal/accounts/{id}/activity", ACTIVITY, "usage:ingest"),
    ("POST", "/internal/retention", {}, "usage:cleanup"),
    ("DELETE", "/internal/workspaces/{id}", None, "workspaces:delete"),
    ("POST", "/internal/deliveries/claim", {"limit": 1}, "alerts:deliver"),
]


def _url(template: str) -> str:
    return template.replace("{id}", str(uuid.uuid4()))


@pytest.mark.parametrize(("method", "template", "body", "scope"), INTERNAL_ROUTES)
async def test_internal_routes_take_a_service_token_with_the_scope(
    client, alice, keyring, service_headers, method, template, body, scope
):
    url = _url(template)
    # A user's access token, however valid, is not a service token.
    assert_problem(await client.request(method, url, headers=alice.headers, json=body), 401)
    assert_problem(await client.request(method, url, json=body), 401)
    # A service token for another service.
    assert_problem(await client.request(method, url, headers=service_headers(aud="owr-keys"), json=body), 401)
    # A service token for usage, with every scope but this one.
    others = (*tuple(s for s in ALL_SCOPES if s != scope), "keys:reveal")
    problem = assert_problem(await client.request(method, url, headers=service_headers(*others), json=body), 403)
    assert problem["type"].endswith("/insufficient-scope")
    r = await client.request(method, url, headers=service_headers(scope), json=body)
    assert r.status_code in (200, 204), r.text


async def test_another_workspaces_key_is_404_and_unknown_key_too(ingest, client, alice, bob):
    key = str(uuid.uuid4())
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1)), snapshot("1", "1")))
    assert (await client.get(f"/api/v1/usage/keys/{key}", headers=alice.headers)).status_code == 200
    problem = assert_problem(await client.get(f"/api/v1/usage/keys/{key}", headers=bob.headers), 404)
    assert problem["type"].endswith("/key-not-found")
    assert_problem(await client.get(f"/api/v1/usage/keys/{uuid.uuid4()}", headers=alice.headers), 404)


async def test_the_public_route_needs_a_users_access_token(client, alice, keyring, service_headers):
    url = f"/api/v1/usage/keys/{uuid.uuid4()}"
    refusals = [
        *refused_user_headers(keyring, alice, service_headers),
        bearer(
            TestKeyring(service_audience="owr-usage", default_scopes=ALL_SCOPES).access_token(
                alice.user_id, alice.workspace_id
            )
        ),
    ]
    for headers in refusals:
        assert_problem(await client.get(url, headers=headers), 401)
    # A verified token without a workspace cannot read workspace data.
    no_workspace = bearer(keyring.access_token(alice.user_id, None))
    assert assert_problem(await client.get(url, headers=no_workspace), 403)["type"].endswith("/workspace-required")


READ_ROUTES = [
    "/api/v1/usage/summary",
    "/api/v1/usage/daily",
    "/api/v1/usage/export",
    "/api/v1/usage/export?format=json",
    "/api/v1/usage/accounts",
]


@pytest.mark.parametrize("url", READ_ROUTES)
async def test_the_read_routes_need_a_users_token_in_a_workspace(client, alice, keyring, service_headers, url):
    for headers in ({}, bearer("not-a-jwt"), service_headers(), service_headers(aud="owr-api")):
        assert_problem(await client.get(url, headers=headers), 401)
    no_workspace = bearer(keyring.access_token(alice.user_id, None))
    assert assert_problem(await client.get(url, headers=no_workspace), 403)["type"].endswith("/workspace-required")


async def test_reads_never_show_another_workspaces_figures(committed_ingest, committed_client, alice, bob):
    key, mgmt = str(uuid.uuid4()), str(uuid.uuid4())
    await committed_ingest.snapshots(
        item(key, alice.workspace_id, at(days_ago(1)), snapshot("1", "1")),
        item(mgmt, alice.workspace_id, at(days_ago(1)), snapshot("0", "0", is_management_key=True)),
    )
    # Alice: two keys with a day each (the management key's is $0), one account.
    for tenant, keys, accounts in ((alice, 2, 1), (bob, 0, 0)):
        summary = (await committed_client.get("/api/v1/usage/summary", headers=tenant.headers)).json()
        assert len(summary["by_key"]) == keys
        assert (await committed_client.get("/api/v1/usage/daily", headers=tenant.headers)).json()["total"] == keys
        assert (await committed_client.get("/api/v1/usage/accounts", headers=tenant.headers)).json()[
            "total"
        ] == accounts
        export = await committed_client.get("/api/v1/usage/export", headers=tenant.headers)
        assert len(export.text.strip().splitlines()) == 1 + keys
    # Bob naming alice's key is a 404, as an unknown key is, on every route that takes one.
    for path in ("daily", "export"):
        problem = assert_problem(
            await committed_client.get(f"/api/v1/usage/{path}", headers=bob.headers, params={"key_id": key}), 404
        )
        assert problem["type"].endswith("/key-not-found")
        assert (
            await committed_client.get(f"/api/v1/usage/{path}", headers=alice.headers, params={"key_id": key})
        ).status_code == 200


async def test_an_api_token_reads_usage_only_with_usage_read(committed_client, alice, keyring):
    def token_caller(*scopes: str) -> dict[str, str]:
        # The JWT auth mints for an API token: it carries `tid` and the token's `scope`.
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    r = await committed_client.get("/api/v1/usage/summary", headers=token_caller("keys:read", "keys:write"))
    problem = assert_problem(r, 403)
    assert problem["type"].endswith("/insufficient-scope")
    assert "usage:read" in problem["detail"]
    assert (await committed_client.get("/api/v1/usage/summary", headers=token_caller("usage:read"))).status_code == 200
