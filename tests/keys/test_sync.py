"""Syncs on request: a new key's first sync is queued when it is added, `POST /api/v1/keys/{id}/sync`
queues one ARQ job per key, with a deterministic id and the trace context."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.jobs import deserialize_job
from prometheus_client import REGISTRY

from owr_keys.app import create_app
from tests.keys.conftest import QUEUE, make_settings, new_secret, store_key
from tests.support.apps import running
from tests.support.http import assert_problem
from tools.devinfra import embedded_redis

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_sync_enqueues_one_job_with_a_deterministic_id(client, alice, redis_client):
    key = await store_key(client, alice)
    await redis_client.flushdb()  # the first sync the new key queued: this test presses the button itself
    headers = {**alice.headers, "traceparent": TRACEPARENT, "x-request-id": "sync-req-1"}
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=headers)
    assert r.status_code == 202, r.text
    job_id = f"sync_key:{key['id']}"
    assert r.json() == {"key_id": key["id"], "job_id": job_id, "enqueued": True}

    raw = await redis_client.get(f"arq:job:{job_id}")
    assert raw is not None
    job = deserialize_job(raw)
    assert job.function == "sync_key"
    assert job.args == ()
    assert job.kwargs == {"key_id": key["id"], "traceparent": TRACEPARENT, "request_id": "sync-req-1"}
    assert await redis_client.zrange(QUEUE, 0, -1) == [job_id.encode()]

    # Pressing again while it waits queues nothing more.
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)
    assert r.status_code == 202
    assert r.json() == {"key_id": key["id"], "job_id": job_id, "enqueued": False}
    assert await redis_client.zcard(QUEUE) == 1

    audit = (await client.get(f"/api/v1/keys/{key['id']}/audit", headers=alice.headers)).json()["items"]
    assert [(e["action"], e["details"]) for e in audit[:2]] == [
        ("sync_requested", {"enqueued": False}),
        ("sync_requested", {"enqueued": True}),
    ]
    assert audit[1]["request_id"] == "sync-req-1"


async def test_each_key_gets_its_own_job(client, alice, redis_client):
    a = await store_key(client, alice)
    b = await store_key(client, alice)
    await redis_client.flushdb()
    for key in (a, b):
        assert (await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)).status_code == 202
    queued = {m.decode() for m in await redis_client.zrange(QUEUE, 0, -1)}
    assert queued == {f"sync_key:{a['id']}", f"sync_key:{b['id']}"}


async def test_malformed_traceparent_is_not_carried(client, alice, redis_client):
    key = await store_key(client, alice)
    await redis_client.flushdb()
    headers = {**alice.headers, "traceparent": "00-zz-not-a-trace"}
    assert (await client.post(f"/api/v1/keys/{key['id']}/sync", headers=headers)).status_code == 202
    job = deserialize_job(await redis_client.get(f"arq:job:sync_key:{key['id']}"))
    assert job.kwargs["traceparent"] is None
    assert job.kwargs["request_id"]  # the middleware's own id when the caller sent none


async def test_sync_of_an_inactive_key_is_409_and_queues_nothing(client, alice, redis_client):
    key = await store_key(client, alice)
    await redis_client.flushdb()
    await client.patch(f"/api/v1/keys/{key['id']}", headers=alice.headers, json={"is_active": False})
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)
    assert assert_problem(r, 409)["type"].endswith("/key-inactive")
    assert await redis_client.zcard(QUEUE) == 0


def first_syncs(outcome: str) -> float:
    return REGISTRY.get_sample_value("owr_keys_first_syncs_total", {"outcome": outcome}) or 0.0


async def test_adding_a_key_queues_its_first_sync_once(client, alice, redis_client):
    headers = {**alice.headers, "traceparent": TRACEPARENT, "x-request-id": "add-req-1"}
    before = first_syncs("enqueued")
    r = await client.post("/api/v1/keys", headers=headers, json={"name": "new", "key": new_secret()})
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["status"] == "pending"
    job_id = f"sync_key:{key['id']}"
    assert await redis_client.zrange(QUEUE, 0, -1) == [job_id.encode()]
    job = deserialize_job(await redis_client.get(f"arq:job:{job_id}"))
    assert (job.function, job.args) == ("sync_key", ())
    assert job.kwargs == {"key_id": key["id"], "traceparent": TRACEPARENT, "request_id": "add-req-1"}
    assert first_syncs("enqueued") == before + 1

    # A press while that first sync waits is the same job: nothing more is queued.
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)
    assert r.json()["enqueued"] is False
    assert await redis_client.zcard(QUEUE) == 1


async def test_a_refused_key_queues_nothing(client, alice, redis_client):
    secret = new_secret()
    await store_key(client, alice, secret)
    await redis_client.flushdb()
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "again", "key": secret})
    assert_problem(r, 409)
    assert await redis_client.zcard(QUEUE) == 0


async def test_a_key_added_while_redis_is_down_is_stored_and_left_to_the_due_scan(
    database_url, keyring, alice, tmp_path
):
    """A real Redis, stopped under the running app: the key is still stored (201, `pending`), nothing fails."""
    redis = embedded_redis(tmp_path / "redis")
    app = create_app(make_settings(database_url, redis.__enter__()), jwks_fetcher=keyring.fetch)
    async with running(app) as client:
        redis.__exit__(None, None, None)
        before = first_syncs("queue_unavailable")
        r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "offline", "key": new_secret()})
        assert r.status_code == 201, r.text
        assert first_syncs("queue_unavailable") == before + 1
        # Committed by the app's own pool, never synced: the due scan lists it.
        stored = (await client.get(f"/api/v1/keys/{r.json()['id']}", headers=alice.headers)).json()
        assert (stored["status"], stored["last_synced_at"]) == ("pending", None)


# --- the due scan's claims (`POST /internal/keys/due/claim`) -------------------------------------------


async def claim(client, service_headers, **body) -> list[dict[str, Any]]:
    r = await client.post("/internal/keys/due/claim", headers=service_headers("keys:due"), json=body)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_claims_page_through_every_due_key_and_lease_them(client, tenant_factory, service_headers):
    tenant = tenant_factory()
    due = [(await store_key(client, tenant, name=f"k{n}"))["id"] for n in range(9)]
    fresh = await store_key(client, tenant, name="fresh")
    inactive = await store_key(client, tenant, name="inactive")
    synced_at = datetime.now(UTC).isoformat()
    r = await client.post(
        f"/internal/keys/{fresh['id']}/status",
        headers=service_headers("keys:status"),
        json={"status": "valid", "last_synced_at": synced_at},
    )
    assert r.status_code == 204
    await client.patch(f"/api/v1/keys/{inactive['id']}", headers=tenant.headers, json={"is_active": False})

    pages = []
    while True:
        # The leases are the paging: each claim is the next page. `after` (an earlier release's cursor) is
        # accepted and ignored.
        page = await claim(client, service_headers, limit=4, after=str(uuid.UUID(int=2**128 - 1)))
        pages.append(page)
        if len(page) < 4:
            break
    taken = [item["id"] for page in pages for item in page]
    mine = [i for i in taken if i in {*due, fresh["id"], inactive["id"]}]
    assert sorted(mine) == sorted(due)  # every due key once; the fresh and the inactive one not at all
    assert set(pages[0][0]) == {"id", "workspace_id", "kind", "status", "last_synced_at"}
    # Leased: a scan starting over meanwhile gets none of them.
    again = {item["id"] for item in await claim(client, service_headers, limit=1000)}
    assert again.isdisjoint(due)


async def test_claims_of_concurrent_scans_are_disjoint(committed_client, tenant_factory, service_headers):
    """Two scans on their own connections at once (two workers): no key in both, none left out."""
    tenant = tenant_factory()
    due = {(await store_key(committed_client, tenant, name=f"k{n}"))["id"] for n in range(40)}

    async def scan() -> list[str]:
        taken = []
        while True:
            page = await claim(committed_client, service_headers, limit=3)
            taken += [item["id"] for item in page]
            if len(page) < 3:
                return taken

    first, second = await asyncio.gather(scan(), scan())
    assert set(first).isdisjoint(second)
    assert due <= set(first) | set(second)


async def drain_due_keys(client, service_headers) -> None:
    """Lease every due key other tests left committed, inside this test's rolled-back transaction."""
    while len(await claim(client, service_headers, limit=1000)) == 1000:
        pass


async def test_a_small_workspace_is_not_queued_behind_a_large_one(client, tenant_factory, service_headers):
    """400 due keys of one workspace and 3 of another: the first page holds all 3 (finding 8 of issue 13),
    however the keys' ids fall; then the rest of the large workspace's keys, each once."""
    await drain_due_keys(client, service_headers)
    large, small = tenant_factory(), tenant_factory()
    large_ids = [(await store_key(client, large, name=f"l{n}"))["id"] for n in range(400)]
    small_ids = {(await store_key(client, small, name=f"s{n}"))["id"] for n in range(3)}
    # Five of the large workspace's keys were synced long ago: they come after its never-synced keys.
    stale = large_ids[-5:]
    long_ago = datetime.now(UTC) - timedelta(days=2)
    r = await client.post(
        "/internal/keys/status",
        headers=service_headers("keys:status"),
        json={"items": [{"id": i, "status": "valid", "last_synced_at": long_ago.isoformat()} for i in stale]},
    )
    assert r.status_code == 200, r.text

    first = await claim(client, service_headers, limit=50)
    assert len(first) == 50
    # Each workspace's first key before anyone's second: rank 1, 2 and 3 of both, then the large one's.
    owners = [item["workspace_id"] for item in first]
    for rank in range(3):
        assert sorted(owners[2 * rank : 2 * rank + 2]) == sorted([large.workspace_id, small.workspace_id])
    assert set(owners[6:]) == {large.workspace_id}
    assert small_ids == {item["id"] for item in first if item["workspace_id"] == small.workspace_id}
    rest = []
    while page := await claim(client, service_headers, limit=100):
        rest += page
    taken = [item["id"] for item in first + rest if item["workspace_id"] == large.workspace_id]
    assert sorted(taken) == sorted(large_ids)  # each once
    assert set(taken[-5:]) == set(stale)  # never synced first, then the oldest sync


async def test_claims_validate_their_body(client, service_headers, alice):
    headers = service_headers("keys:due")
    for body in ({"limit": 0}, {"limit": 1001}, {"after": "nope"}, {"invalid": "x"}, {"extra": 1}):
        assert_problem(await client.post("/internal/keys/due/claim", headers=headers, json=body), 422)
    assert_problem(await client.post("/internal/keys/due/claim", headers=service_headers("keys:reveal"), json={}), 403)
    assert_problem(await client.post("/internal/keys/due/claim", headers=alice.headers, json={}), 401)
