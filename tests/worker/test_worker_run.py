"""The real arq Worker, in burst mode, with the worker's own startup: a queued sync_key runs, leaves no
kept result (so the same job id can be queued again), and the health server answers."""

from __future__ import annotations

import socket

import pytest
from arq.worker import Worker

from owr_worker.crons import HEARTBEAT_KEY
from owr_worker.worker import worker_settings
from tests.worker.conftest import KEY, KEY_BODY, Reply

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
