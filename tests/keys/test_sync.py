"""`POST /api/v1/keys/{id}/sync`: one ARQ job per key, with a deterministic id and the trace context."""

from __future__ import annotations

from arq.jobs import deserialize_job

from tests.keys.conftest import QUEUE, store_key
from tests.support.http import assert_problem

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_sync_enqueues_one_job_with_a_deterministic_id(client, alice, redis_client):
    key = await store_key(client, alice)
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
    for key in (a, b):
        assert (await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)).status_code == 202
    queued = {m.decode() for m in await redis_client.zrange(QUEUE, 0, -1)}
    assert queued == {f"sync_key:{a['id']}", f"sync_key:{b['id']}"}


async def test_malformed_traceparent_is_not_carried(client, alice, redis_client):
    key = await store_key(client, alice)
    headers = {**alice.headers, "traceparent": "00-zz-not-a-trace"}
    assert (await client.post(f"/api/v1/keys/{key['id']}/sync", headers=headers)).status_code == 202
    job = deserialize_job(await redis_client.get(f"arq:job:sync_key:{key['id']}"))
    assert job.kwargs["traceparent"] is None
    assert job.kwargs["request_id"]  # the middleware's own id when the caller sent none


async def test_sync_of_an_inactive_key_is_409_and_queues_nothing(client, alice, redis_client):
    key = await store_key(client, alice)
    await client.patch(f"/api/v1/keys/{key['id']}", headers=alice.headers, json={"is_active": False})
    r = await client.post(f"/api/v1/keys/{key['id']}/sync", headers=alice.headers)
    assert assert_problem(r, 409)["type"].endswith("/key-inactive")
    assert await redis_client.zcard(QUEUE) == 0
