"""The worker without Redis: one warning per outage, capped backoff, not ready while away, no exit, and a
clean stop; a job that meets the outage is retried rather than dropped. (Real processes against a Redis
that is killed and frozen: tests/deploy/test_redis_faults.py.)"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
from arq import Retry
from redis.exceptions import ConnectionError as RedisConnectionError

from owr_shared.health import end_drain
from owr_worker.instrument import REDIS_RETRY_SECONDS, instrumented
from owr_worker.metrics import REDIS_UP
from owr_worker.outage import RedisOutage, RedisUnavailable, ResilientWorker
from owr_worker.worker import worker_settings
from tests.support.logs import captured_json_logs
from tests.support.ports import closed_port, free_port


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_warning_per_outage_and_a_capped_backoff(capsys):
    clock = Clock()
    outage = RedisOutage(base_seconds=0.2, cap_seconds=1.0, clock=clock, rand=lambda: 1.0)
    with captured_json_logs(capsys, "worker") as logs:
        delays = [outage.failed(RedisConnectionError("refused")) for _ in range(6)]
        assert outage.down
        assert REDIS_UP._value.get() == 0
        with pytest.raises(RedisUnavailable):
            await outage.check()
        clock.now += 7.5
        outage.recovered()
        outage.recovered()  # an ordinary poll after the outage logs nothing
        text = logs.getvalue()
    assert delays == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert text.count('"redis_unavailable"') == 1
    assert text.count('"redis_recovered"') == 1
    assert '"outage_seconds": 7.5' in text or '"outage_seconds":7.5' in text
    assert outage.down_since is None
    assert REDIS_UP._value.get() == 1
    await outage.check()
    # The next outage is announced again, and its backoff starts afresh.
    assert outage.failed(RedisConnectionError("refused")) == 0.2


async def test_a_job_meeting_the_outage_is_retried():
    async def needs_redis(ctx: dict[str, object]) -> None:
        raise RedisConnectionError("Connection refused")

    with pytest.raises(Retry) as raised:
        await instrumented(needs_redis)({})
    assert raised.value.defer_score == int(REDIS_RETRY_SECONDS * 1000)


@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_the_worker_waits_for_redis_live_but_not_ready_and_stops_cleanly(settings_factory):
    port = free_port()
    settings = settings_factory(
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
        port=port,
        redis_retry_base_seconds=0.05,
        redis_retry_cap_seconds=0.2,
    )
    worker = ResilientWorker(**{**worker_settings(settings), "handle_signals": False})
    end_drain()
    running = asyncio.create_task(worker.main())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=3) as client:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health/live")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["redis"].startswith("error")
            assert checks["queue"].startswith("error")
            await asyncio.sleep(1.0)  # several attempts
        assert not running.done(), "the worker gave up on Redis"
        assert worker.ctx["redis_outage"].attempts >= 3
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()  # arq's own close raised ConnectionError here
