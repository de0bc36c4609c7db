"""A script's journey with only an API token, through the gateway, against the real processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import System, second_gateway
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_journey import problem
from tests.e2e.test_keys_journey import signed_in
from tests.e2e.test_sync_journey import Watcher, funded_keys

pytestmark = pytest.mark.e2e


async def test_a_script_lists_keys_reads_usage_and_exports_with_only_a_token_until_it_is_revoked(
    system: System, emulator: EmulatorAdmin
):
    (key,) = await funded_keys(emulator, 1)
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        session = await signed_in(client)
        watcher = Watcher(client, session)
        key_id = await watcher.add("scripted", key["key"])
        await watcher.sync(key_id)

        r = await client.post("/api/v1/tokens", headers=session, json={"name": "nightly report"})
        assert r.status_code == 201, r.text
        created = r.json()
        token = created["token"]
        assert created["scopes"] == ["usage:read", "keys:read"]
        script = {"authorization": f"Bearer {token}"}

        listing = await client.get("/api/v1/keys", headers=script)
        assert listing.status_code == 200, listing.text
        assert [k["id"] for k in listing.json()["items"]] == [key_id]
        assert listing.headers["x-ratelimit-limit"] == "600"  # the token policy, not the user's
        usage = await client.get(
            f"/api/v1/usage/keys/{key_id}", headers=script, params={"from": str(day), "to": str(day)}
        )
        assert usage.status_code == 200, usage.text
        summary = await client.get("/api/v1/usage/summary", headers=script, params={"from": str(day), "to": str(day)})
        assert summary.status_code == 200, summary.text
        export = await client.get(
            "/api/v1/usage/export", headers=script, params={"format": "csv", "from": str(day), "to": str(day)}
        )
        assert export.status_code == 200, export.text
        assert key_id in export.text

        # Read-only by default: no sync, no writes; never the internal API, never token management.
        assert problem(await client.post(f"/api/v1/keys/{key_id}/sync", headers=script), 403)["type"].endswith(
            "/insufficient-scope"
        )
        problem(await client.delete(f"/api/v1/keys/{key_id}", headers=script), 403)
        problem(await client.get("/internal/keys/due", headers=script), 404)
        problem(await client.post("/api/v1/tokens", headers=script, json={"name": "another"}), 403)

        tokens = await client.get("/api/v1/tokens", headers=session)
        assert [t["prefix"] for t in tokens.json()["items"]] == [token[:10]]
        assert token not in tokens.text

        assert (await client.delete(f"/api/v1/tokens/{created['id']}", headers=session)).status_code == 204
        refused = problem(await client.get("/api/v1/keys", headers=script), 401)
        assert "revoked" in refused["detail"]

    logs = system.logs()
    assert token not in logs
    assert token[10:] not in logs


async def test_a_tokens_own_limit_holds_across_two_gateways(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        session = await signed_in(client)
        r = await client.post(
            "/api/v1/tokens",
            headers=session,
            json={"name": "tight", "rate_limit_per_minute": 5, "scopes": ["keys:read"]},
        )
        assert r.status_code == 201, r.text
        script = {"authorization": f"Bearer {r.json()['token']}"}
    other, other_url = second_gateway(system)
    try:
        statuses = []
        async with httpx.AsyncClient(timeout=15) as client:
            for i in range(7):
                base = system.gateway if i % 2 == 0 else other_url
                response = await client.get(f"{base}/api/v1/keys", headers=script)
                statuses.append(response.status_code)
        assert statuses[:5] == [200] * 5, statuses
        assert statuses[5:] == [429, 429], statuses
        assert response.headers["x-ratelimit-limit"] == "5"
        assert int(response.headers["retry-after"]) >= 1
    finally:
        other.stop()


async def test_an_unknown_or_malformed_token_is_401(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        for token in ("owr_" + "A" * 49, "owr_short"):
            r = await client.get("/api/v1/keys", headers={"authorization": f"Bearer {token}"})
            problem(r, 401)


async def test_one_openapi_document_describes_the_public_api_and_docs_render_it(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        r = await client.get("/api/v1/openapi.json")
        assert r.status_code == 200, r.text
        document = r.json()
        page = await client.get("/docs")
    paths = document["paths"]
    for path in (
        "/api/v1/auth/login",
        "/api/v1/tokens",
        "/api/v1/keys",
        "/api/v1/keys/{key_id}/sync",
        "/api/v1/usage/summary",
    ):
        assert path in paths, path
    assert not [p for p in paths if p.startswith(("/internal", "/health", "/metrics"))]
    assert set(document["components"]["securitySchemes"]) == {"sessionJwt", "apiToken"}
    listing = paths["/api/v1/keys"]["get"]
    assert listing["security"] == [{"sessionJwt": []}, {"apiToken": []}]
    assert {"401", "403", "429"} <= set(listing["responses"])
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    schema_refs = r.text.split('"$ref":"')[1:]
    schemas = document["components"]["schemas"]
    for ref in schema_refs:
        assert ref.split('"')[0].removeprefix("#/components/schemas/") in schemas  # every reference resolves
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert "/api/v1/openapi.json" in page.text
