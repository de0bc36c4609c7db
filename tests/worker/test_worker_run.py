"""The real arq Worker, in burst mode, with the worker's own startup: a queued sync_key runs, leaves no
kept result (so the same job id can be queued again), and the health server answers; alert deliveries to a
dead receiver run beside the syncs without holding them up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import pytest
from arq.worker import Worker

from owr_worker.crons import HEARTBEAT_KEY
from owr_worker.webhooks import new_secret
from owr_worker.worker import worker_settings
from tests.worker.conftest import KEY, KEY_BODY, Reply, claimed

WS = "2b0a7f61-8a1e-4a4e-9d55-0d7c4f3f2a10"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_worker_runs_a_queued_sync_key(settings_factory, openrouter, internal, arq_redis):
    url = internal.url
    port = free_port()
    settings = settings_factory(
        openrouter_base_url=openrouter.url + "/api/v1", auth_url=url, keys_url=url, usage_url=url, port=port
    )
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    # keys' job carries no workspace id; the reveal answers it.
    # On the suite's own queue (settings and arq_redis agree): the end-to-end suite's worker reads the default.
    job = await arq_redis.enqueue_job(
        "sync_key", _job_id=f"sync_key:{key_id}", key_id=key_id, traceparent=None, request_id="r1"
    )
    assert job is not None

    config = {**worker_settings(settings), "handle_signals": False, "burst": True, "poll_delay": 0.05}
    worker = Worker(**config)
    try:
        await worker.main()
    finally:
        await worker.close()

    assert worker.jobs_complete >= 1
    assert worker.jobs_failed == 0
    assert internal.statuses[key_id][0]["status"] == "valid"
    assert len(internal.snapshots) == 1
    assert internal.snapshots[0]["workspace_id"] == WS
    assert await arq_redis.exists(HEARTBEAT_KEY)
    # keep_result=0: nothing blocks the next "sync now".
    assert not await arq_redis.exists(f"arq:result:sync_key:{key_id}")
    again = await arq_redis.enqueue_job("sync_key", _job_id=f"sync_key:{key_id}", key_id=key_id)
    assert again is not None


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_a_dead_receiver_never_slows_syncing(settings_factory, openrouter, internal, outbox, arq_redis):
    """Two job slots; alert deliveries to a receiver that never answers run beside the syncs. The syncs all finish
    while the deliveries still wait, and the deliveries end at their timeout, reported as such."""
    url = internal.url
    settings = settings_factory(
        openrouter_base_url=openrouter.url + "/api/v1",
        auth_url=url,
        keys_url=url,
        usage_url=url,
        port=free_port(),
        max_jobs=2,
        outbound_timeout_seconds=4.0,
        delivery_concurrency=2,
    )
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    openrouter.reply("/dead", Reply(200, "", delay=60))
    dead = [outbox.add(claimed(url=openrouter.url + "/dead", secrets=[new_secret()])) for _ in range(3)]
    key_ids = [internal.add_key(KEY, WS) for _ in range(6)]
    for key_id in key_ids:
        await arq_redis.enqueue_job("sync_key", _job_id=f"sync_key:{key_id}", key_id=key_id)

    worker = Worker(**{**worker_settings(settings), "handle_signals": False, "burst": True, "poll_delay": 0.05})
    started = time.monotonic()
    run = asyncio.create_task(worker.main())
    try:
        while len(internal.statuses) < len(key_ids):
            assert not outbox.results, "the syncs waited for the deliveries"
            await asyncio.sleep(0.02)
        synced_after = time.monotonic() - started
        await asyncio.wait_for(run, timeout=30)
    finally:
        run.cancel()
        await worker.close()
    assert synced_after < 4.0  # before the first deliveries' timeout
    outcomes = {delivery_id: body for delivery_id, body, _ in outbox.results}
    assert {d.id for d in dead} == set(outcomes)
    assert {(body["outcome"], body["error"]) for body in outcomes.values()} == {("failed", "timeout")}
    assert time.monotonic() - started >= 2 * 4.0  # three attempts, two at a time, each held to its timeout


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_the_poll_keeps_delivering_and_a_backlog_drains_batch_after_batch(
    settings_factory, internal, outbox, openrouter, arq_redis
):
    """A running worker (not burst): a backlog of five in batches of two is sent through the next-batch jobs, and a
    delivery raised later goes out at the next poll, seconds later, not a minute."""
    url = internal.url
    settings = settings_factory(
        auth_url=url, keys_url=url, usage_url=url, port=free_port(), delivery_batch=2, delivery_poll_seconds=1
    )
    openrouter.reply("/hook", Reply(204, ""))
    first = [outbox.add(claimed(url=openrouter.url + "/hook", secrets=[new_secret()])) for _ in range(5)]
    worker = Worker(**{**worker_settings(settings), "handle_signals": False, "poll_delay": 0.05})
    run = asyncio.create_task(worker.main())
    try:

        async def sent(deliveries: list[Any], seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while not {d.id for d in deliveries} <= {delivery_id for delivery_id, _, _ in outbox.results}:
                assert time.monotonic() < deadline, "not delivered in time"
                await asyncio.sleep(0.05)

        await sent(first, 10)
        for _ in range(3):  # later events, each picked up by a later poll
            later = outbox.add(claimed(url=openrouter.url + "/hook", secrets=[new_secret()]))
            await sent([later], 5)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        # close() cancels a poll still running and gathers it, re-raising its cancellation (a full run saw it).
        with contextlib.suppress(asyncio.CancelledError):
            await worker.close()
    assert {body["outcome"] for _, body, _ in outbox.results} == {"delivered"}
    assert len(outbox.results) == 8
