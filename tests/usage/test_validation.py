"""Bad input is a 422 (or 400 for malformed JSON) problem that never echoes the value; never a 500."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.http import assert_problem
from tests.usage.conftest import at, days_ago, item, read_key, snapshot, today, window

SECRETISH = "sk-or-v1-" + "7" * 64


def _snap(**overrides: Any) -> dict[str, Any]:
    body = snapshot("1", "0.5")
    body.update(overrides)
    return {"items": [item(str(uuid.uuid4()), str(uuid.uuid4()), at(days_ago(1)), body)]}


BAD_SNAPSHOT_BODIES = [
    {},
    {"items": []},
    {"items": [{}]},
    {"items": "nope"},
    _snap(usage=SECRETISH),
    _snap(usage="1e400"),
    _snap(usage_daily=None),
    _snap(usage="0." + "1" * 40),
    _snap(usage=10**13),
    _snap(label="x" * 129),
    _snap(label="nul\x00byte"),
    _snap(is_management_key=SECRETISH),
    _snap(expires_at=SECRETISH),
    _snap(expires_at="0001-01-01T00:00:00+01:00"),
    {
        "items": [
            {
                **item(str(uuid.uuid4()), str(uuid.uuid4()), at(days_ago(1)), snapshot("1", "0")),
                "observed_at": "1999-12-31T23:59:59Z",
            }
        ]
    },
    {
        "items": [
            {
                **item(str(uuid.uuid4()), str(uuid.uuid4()), at(days_ago(1)), snapshot("1", "0")),
                "observed_at": "9999-12-31T23:59:59-01:00",
            }
        ]
    },
    {
        "items": [
            {**item(str(uuid.uuid4()), str(uuid.uuid4()), at(days_ago(1)), snapshot("1", "0")), "key_id": SECRETISH}
        ]
    },
]


@pytest.mark.parametrize("body", BAD_SNAPSHOT_BODIES)
async def test_bad_snapshots_are_422_without_echo(ingest, body):
    r = await ingest.call("POST", "/internal/snapshots", body)
    problem = assert_problem(r, 422)
    assert SECRETISH not in r.text
    assert all(set(e) == {"loc", "msg", "type"} for e in problem["errors"])


async def test_a_batch_of_more_than_500_is_refused(ingest):
    one = item(str(uuid.uuid4()), str(uuid.uuid4()), at(days_ago(1)), snapshot("1", "0"))
    assert_problem(await ingest.call("POST", "/internal/snapshots", {"items": [one] * 501}), 422)


@pytest.mark.parametrize("raw", [b"{", b"\x00", b'{"items": [NaN]}', b'{"items": Infinity}', b"[" * 100000])
async def test_malformed_json_is_400(client, service_headers, raw):
    headers = {**service_headers(), "content-type": "application/json"}
    r = await client.post("/internal/snapshots", headers=headers, content=raw)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (
            "/internal/accounts/{id}/credits",
            {"workspace_id": "x", "observed_at": "2026-01-01T00:00:00Z", "total_credits": 1, "total_usage": 0},
        ),
        (
            "/internal/accounts/{id}/credits",
            {
                "workspace_id": str(uuid.uuid4()),
                "observed_at": "2026-01-01T00:00:00Z",
                "total_credits": SECRETISH,
                "total_usage": 0,
            },
        ),
    ],
)
async def test_bad_credits_are_422(ingest, url, body):
    r = await ingest.call("POST", url.replace("{id}", str(uuid.uuid4())), body)
    assert_problem(r, 422)
    assert SECRETISH not in r.text


@pytest.mark.parametrize(
    "row",
    [
        {"date": "2026-01-01", "model": "m", "requests": 2**63},
        {"date": "2026-01-01", "model": "m", "requests": -1},
        {"date": "2026-01-01", "model": ""},
        {"date": "not a date", "model": "m"},
        {"date": "2026-01-01", "model": "m", "usage": "NaN"},
        {"date": "2026-01-01", "model": SECRETISH * 10},
    ],
)
async def test_bad_activity_rows_are_422(ingest, row):
    body = {
        "workspace_id": str(uuid.uuid4()),
        "observed_at": "2026-01-01T00:00:00Z",
        "api_key_hash": "ab" * 32,
        "rows": [row],
    }
    r = await ingest.call("PUT", f"/internal/accounts/{uuid.uuid4()}/activity", body)
    assert_problem(r, 422)
    assert SECRETISH not in r.text


async def test_bad_key_lists_are_422(ingest):
    base = {"workspace_id": str(uuid.uuid4()), "observed_at": "2026-01-01T00:00:00Z"}
    for keys in ([{"hash": ""}], [{"name": "no hash"}], [{"hash": "a", "disabled": SECRETISH}], "nope"):
        r = await ingest.call("PUT", f"/internal/accounts/{uuid.uuid4()}/keys", {**base, "keys": keys})
        assert_problem(r, 422)
        assert SECRETISH not in r.text


async def test_ranges_are_checked(ingest, client, alice):
    key = str(uuid.uuid4())
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1)), snapshot("1", "1")))
    url = f"/api/v1/usage/keys/{key}"
    reversed_ = await client.get(
        url, headers=alice.headers, params={"from": days_ago(1).isoformat(), "to": days_ago(2).isoformat()}
    )
    assert assert_problem(reversed_, 422)["type"].endswith("/invalid-range")
    too_old = await client.get(url, headers=alice.headers, params={"from": days_ago(401).isoformat()})
    assert_problem(too_old, 422)
    for params in ({"from": "yesterday"}, {"to": "9999-99-99"}, {"from": "0000-01-01"}):
        assert_problem(await client.get(url, headers=alice.headers, params=params), 422)
    # Extreme dates are refused, not crashed on: `to` reaches at most a year past today.
    far = await client.get(url, headers=alice.headers, params={"to": "9999-12-31"})
    assert assert_problem(far, 422)["type"].endswith("/invalid-range")
    assert (await client.get(url, headers=alice.headers, params={"to": days_ago(-300).isoformat()})).status_code == 200
    assert_problem(await client.get(url, headers=alice.headers, params={"to": "0001-01-01"}), 422)
    # Defaults: the last 30 days up to today.
    body = await read_key(client, alice, key)
    assert [d["date"] for d in body["daily"]] == [days_ago(1).isoformat()]
    assert (await read_key(client, alice, key, **window(days_ago(400), today())))["daily"]
    assert_problem(await client.get("/api/v1/usage/keys/not-a-uuid", headers=alice.headers), 422)
