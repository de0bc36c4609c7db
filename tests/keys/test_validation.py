"""Bad input is always a 4xx problem, and a refused key is never echoed back."""

from __future__ import annotations

import uuid

import pytest

from owr_keys.app import create_app
from tests.keys.conftest import make_settings, new_secret, store_key
from tests.support.apps import running
from tests.support.http import assert_problem
from tests.support.ports import closed_port

NOT_KEYS = [
    "sk-or-v1-short",
    "sk-or-" + "a" * 19,
    "sk-or-" + "a" * 201,
    "sk-ant-" + "a" * 40,
    "SK-OR-v1-" + "a" * 64,
    "sk-or-v1-" + "a" * 30 + " " + "b" * 30,
    "sk-or-v1-" + "a" * 30 + "\n" + "b" * 30,
    "sk-or-v1-" + "é" * 40,
    "sk-or-v1-" + "a" * 30 + "\u0000",
    "sk-or-v1-" + "a" * 30 + "'; drop table keys;--",
    "owr_" + "a" * 40,
    "x" * 5000,
    "",
    "   ",
]


@pytest.mark.parametrize("value", NOT_KEYS)
async def test_a_value_that_is_not_a_key_is_422_and_never_echoed(client, alice, value):
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "n", "key": value})
    body = assert_problem(r, 422)
    assert ["body", "key"] in [e["loc"] for e in body["errors"]]
    if value.strip():
        assert value.strip() not in r.text
        assert value.strip()[6:] not in r.text


@pytest.mark.parametrize("value", [12345, None, ["sk-or-v1-" + "a" * 64], {"k": "v"}, True])
async def test_a_key_of_the_wrong_type_is_422(client, alice, value):
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "n", "key": value})
    assert_problem(r, 422)


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"key": "K"}, ["body", "name"], "missing"),
        ({"name": "n"}, ["body", "key"], "missing"),
        ({"name": "", "key": "K"}, ["body", "name"], "string_too_short"),
        ({"name": "    ", "key": "K"}, ["body", "name"], "string_too_short"),
        ({"name": "n" * 101, "key": "K"}, ["body", "name"], "string_too_long"),
        ({"name": "n" * 100_000, "key": "K"}, ["body", "name"], "string_too_long"),
        ({"name": 5, "key": "K"}, ["body", "name"], "string_type"),
        ({"name": "a\u0000b", "key": "K"}, ["body", "name"], "value_error"),
        ({"name": "a\nb", "key": "K"}, ["body", "name"], "value_error"),
        ({"name": "n", "key": "K", "kind": "management"}, ["body", "kind"], "extra_forbidden"),
        ({"name": "n", "key": "K", "workspace_id": str(uuid.uuid4())}, ["body", "workspace_id"], "extra_forbidden"),
    ],
)
async def test_invalid_create_bodies_are_422(client, alice, payload, loc, kind):
    secret = new_secret()
    payload = {k: secret if v == "K" else v for k, v in payload.items()}
    r = await client.post("/api/v1/keys", headers=alice.headers, json=payload)
    body = assert_problem(r, 422)
    assert [loc, kind] in [[e["loc"], e["type"]] for e in body["errors"]]
    assert secret not in r.text


async def test_a_name_holding_a_key_is_refused_without_echo(client, alice):
    secret = new_secret()
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": f"mine {secret}", "key": new_secret()})
    assert_problem(r, 422)
    assert secret not in r.text
    assert secret[9:] not in r.text


async def test_100_character_names_and_unicode_are_fine(client, alice):
    view = await store_key(client, alice, name="é" * 100)
    assert view["name"] == "é" * 100
    view = await store_key(client, alice, name="Prod - 東京 🔑")
    assert view["name"] == "Prod - 東京 🔑"


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"is_active": "yes"}, ["body", "is_active"], "bool_type"),
        ({"is_active": 1}, ["body", "is_active"], "bool_type"),
        ({"name": ""}, ["body", "name"], "string_too_short"),
        ({"name": "n" * 101}, ["body", "name"], "string_too_long"),
        ({"name": ["a"]}, ["body", "name"], "string_type"),
        ({"label": "x"}, ["body", "label"], "extra_forbidden"),
        ({"key": "sk-or-v1-" + "a" * 64}, ["body", "key"], "extra_forbidden"),
        ({"status": "valid"}, ["body", "status"], "extra_forbidden"),
    ],
)
async def test_invalid_patch_bodies_are_422(client, alice, payload, loc, kind):
    key = await store_key(client, alice)
    r = await client.patch(f"/api/v1/keys/{key['id']}", headers=alice.headers, json=payload)
    body = assert_problem(r, 422)
    assert [loc, kind] in [[e["loc"], e["type"]] for e in body["errors"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/keys"), ("PATCH", "/api/v1/keys/{id}"), ("POST", "/internal/keys/{id}/status")],
)
async def test_malformed_json_is_400(client, alice, service_headers, method, path):
    key = await store_key(client, alice)
    headers = service_headers() if path.startswith("/internal") else alice.headers
    secret = new_secret()
    r = await client.request(
        method,
        path.replace("{id}", key["id"]),
        content=b'{"name": "x", "key": "' + secret.encode() + b'"',
        headers={**headers, "content-type": "application/json"},
    )
    assert assert_problem(r, 400)["type"].endswith("/malformed-json")
    assert secret not in r.text


async def test_body_that_is_not_an_object_is_422(client, alice):
    assert_problem(await client.post("/api/v1/keys", headers=alice.headers, json=["a", "b"]), 422)
    assert_problem(await client.post("/api/v1/keys", headers=alice.headers, json="sk-or-v1-" + "a" * 64), 422)
    r = await client.post("/api/v1/keys", headers={**alice.headers, "content-type": "application/json"}, content=b"")
    assert_problem(r, 422)


@pytest.mark.parametrize(
    "params",
    [{"per_page": 251}, {"per_page": 0}, {"page": 0}, {"page": -1}, {"page": "x"}, {"page": 10**12}],
)
async def test_bad_pagination_is_422(client, alice, params):
    assert_problem(await client.get("/api/v1/keys", headers=alice.headers, params=params), 422)
    key = await store_key(client, alice)
    assert_problem(await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers, params=params), 422)


@pytest.mark.parametrize("bad_id", ["nope", "123", "00000000-0000-0000-0000-00000000000g"])
async def test_malformed_ids_are_422(client, alice, bad_id):
    assert_problem(await client.get(f"/api/v1/keys/{bad_id}", headers=alice.headers), 422)


async def test_queue_down_is_503_and_nothing_is_recorded(client, alice, keys_app, monkeypatch):
    key = await store_key(client, alice)

    async def unreachable(*_args, **_kwargs):
        raise ConnectionError("redis is gone")

    monkeypatch.setattr(keys_app.state.arq, "enqueue_job", unreachable)
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)
    problem = assert_problem(r, 503)
    assert problem["type"].endswith("/queue-unavailable")
    assert r.headers["retry-after"] == "5"
    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert [e["action"] for e in audit] == ["created"]


async def test_keys_starts_and_serves_while_redis_is_away(database_url, keyring, alice):
    """Redis is reached on first use: keys starts without it, reads keep working, "sync now" is a fast 503."""
    settings = make_settings(database_url, f"redis://127.0.0.1:{closed_port()}/0")
    app = create_app(settings, jwks_fetcher=keyring.fetch)
    async with running(app) as client:
        key = await store_key(client, alice)
        assert (await client.get("/api/v1/keys", headers=alice.headers)).status_code == 200
        problem = assert_problem(await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers), 503)
        assert problem["type"].endswith("/queue-unavailable")
