"""The plaintext of a stored key appears nowhere but in the reveal response.

Every endpoint and error path is exercised while responses, log lines, /metrics, the database and
Redis are captured; then each is searched for the key, its secret part, and its base64 and hex forms.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.keys.conftest import new_secret
from tests.support.apps import admin_get
from tests.support.db import savepoint
from tests.support.http import bearer
from tests.support.logs import CapturedLogs, captured_json_logs


def forms(secret: str) -> list[str]:
    """The ways a key could leak: as is, its secret part, base64 and hex of its bytes."""
    raw = secret.encode()
    return [
        secret,
        secret[9:],
        secret[9:41],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
    ]


async def test_plaintext_appears_only_in_the_reveal_response(
    client, alice, bob, keyring, service_headers, json_logs, db_connection, redis_client, service_app
):
    kept, other, deleted, bobs = new_secret(), new_secret(), new_secret(), new_secret()
    secrets_ = [kept, other, deleted, bobs]
    responses = []

    async def call(method: str, url: str, **kw: Any) -> httpx.Response:
        r: httpx.Response = await client.request(method, url, **kw)
        responses.append((f"{method} {url}", r))
        return r

    h = alice.headers
    svc = service_headers()
    # Store, and every refusal on the way in.
    r = await call("POST", "/api/v1/keys", headers=h, json={"name": "kept", "key": kept})
    key = r.json()
    other_key = (await call("POST", "/api/v1/keys", headers=h, json={"name": "other", "key": other})).json()
    gone = (await call("POST", "/api/v1/keys", headers=h, json={"name": "gone", "key": deleted})).json()
    bobs_key = (await call("POST", "/api/v1/keys", headers=bob.headers, json={"name": "b", "key": bobs})).json()
    await call("POST", "/api/v1/keys", headers=h, json={"name": "dup", "key": kept})
    await call("POST", "/api/v1/keys", headers=h, json={"name": "bad", "key": kept + "!"})
    await call("POST", "/api/v1/keys", headers=h, json={"name": "bad", "key": kept[:20]})
    await call("POST", "/api/v1/keys", headers=h, json={"name": "bad", "key": kept + "a" * 200})
    await call("POST", "/api/v1/keys", headers=h, json={"name": f"has {kept}", "key": new_secret()})
    await call("POST", "/api/v1/keys", headers=h, json={"name": "x", "key": kept, "extra": kept})
    await call("POST", "/api/v1/keys", headers=h, json={"name": kept[9:] * 2, "key": new_secret()})
    await call(
        "POST",
        "/api/v1/keys",
        headers={**h, "content-type": "application/json"},
        content=f'{{"name": "x", "key": "{kept}"'.encode(),
    )
    await call("POST", "/api/v1/keys", json={"name": "x", "key": kept})
    await call("POST", "/api/v1/keys", headers=bearer(kept), json={"name": "x", "key": other})
    await call("POST", "/api/v1/keys", headers=bearer(keyring.access_token("u", None)), json={"name": "x", "key": kept})

    # Read, change, sync, audit; and the other workspace's attempts.
    for url in ("/api/v1/keys", f"/api/v1/keys/{key['id']}", f"/api/v1/keys/{key['id']}/audit"):
        await call("GET", url, headers=h)
        await call("GET", url, headers=bob.headers)
    await call("PATCH", f"/api/v1/keys/{key['id']}", headers=h, json={"name": "renamed"})
    await call("PATCH", f"/api/v1/keys/{key['id']}", headers=h, json={"key": kept})
    await call("PATCH", f"/api/v1/keys/{key['id']}", headers=bob.headers, json={"is_active": False})
    await call("POST", f"/api/v1/keys/{key['id']}/sync", headers=h)
    await call("POST", f"/api/v1/keys/{key['id']}/sync", headers=h)
    await call("POST", f"/api/v1/keys/{key['id']}/sync", headers=bob.headers)
    await call("GET", "/api/v1/keys", headers=h, params={"per_page": 251})

    # The internal API: refusals, due list, status with a leaky upstream error, and the reveals.
    await call("GET", "/internal/keys/due", headers=svc)
    await call("POST", f"/internal/keys/{key['id']}/reveal", headers=h)
    await call("POST", f"/internal/keys/{key['id']}/reveal", headers=service_headers("keys:due"))
    await call("POST", f"/internal/keys/{key['id']}/reveal", headers=service_headers(aud="owr-api"))
    await call(
        "POST",
        f"/internal/keys/{key['id']}/status",
        headers=svc,
        json={
            "status": "invalid",
            "last_synced_at": "2026-01-01T00:00:00Z",
            "last_error": f"401 for {kept}: {kept[9:]}",
        },
    )
    await call("POST", f"/internal/keys/{key['id']}/status", headers=svc, json={"status": kept})
    revealed = await client.post(f"/internal/keys/{key['id']}/reveal", headers=svc)
    assert revealed.status_code == 200
    assert revealed.json()["key"] == kept
    await call("GET", f"/api/v1/keys/{key['id']}", headers=h)
    await call("GET", f"/api/v1/keys/{key['id']}/audit", headers=h)

    # A row made unreadable (ciphertexts swapped) fails without saying anything about either key.
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text(
                "UPDATE keys.openrouter_keys t SET ciphertext = s.ciphertext, nonce = s.nonce "
                "FROM keys.openrouter_keys s WHERE (t.id, s.id) IN ((:a, :b), (:b, :a))"
            ),
            {"a": other_key["id"], "b": gone["id"]},
        )
    r = await call("POST", f"/internal/keys/{other_key['id']}/reveal", headers=svc)
    assert r.status_code == 500

    await call("DELETE", f"/api/v1/keys/{gone['id']}", headers=h)
    await call("DELETE", f"/api/v1/keys/{other_key['id']}", headers=h)
    await call("GET", f"/api/v1/keys/{gone['id']}/audit", headers=h)
    responses.append(("GET /metrics (admin port)", await admin_get(service_app, "/metrics")))
    await call("GET", "/health/ready")
    await call("GET", "/openapi.json")

    # Every log line is JSON, the interesting events were logged, and no form of any key is anywhere.
    logs = json_logs.getvalue()
    for line in logs.splitlines():
        if line.strip():
            json.loads(line)
    for event in ("key_created", "key_revealed", "key_unreadable", "key_deleted"):
        assert f'"event":"{event}"' in logs
    assert len(responses) > 40
    for secret in secrets_:
        for form in forms(secret):
            assert form not in logs
            for what, response in responses:
                assert form not in response.text, what
                assert form not in str(response.headers), what

    # The database holds no plaintext, nor its base64 or hex.
    async with savepoint(db_connection) as conn:
        rows = list((await conn.execute(text("SELECT t::text AS row FROM keys.openrouter_keys t"))).all())
        rows += (await conn.execute(text("SELECT t::text AS row FROM keys.audit_events t"))).all()
        raw = (await conn.execute(text("SELECT * FROM keys.openrouter_keys"))).all()
    dumped = "\n".join(r.row for r in rows)
    assert bobs_key["id"] in dumped
    assert key["id"] in dumped
    for secret in secrets_:
        for form in forms(secret):
            assert form not in dumped
        for record in raw:
            for value in record:
                if isinstance(value, bytes):
                    assert secret.encode() not in value
                    assert secret[9:].encode() not in value

    # Nor does Redis (the queued job carries the key id and trace context only).
    stored = [await redis_client.dump(k) or b"" for k in await redis_client.keys("*")]
    assert stored
    for secret in secrets_:
        for value in stored:
            assert secret.encode() not in value
            assert secret[9:].encode() not in value


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[CapturedLogs]:
    """The keys service's real logging pipeline, captured from stdout; restored afterwards."""
    with captured_json_logs(capsys, "keys") as logs:
        yield logs
