"""SIGTERM as Kubernetes sends it, during load and during a sync (DESIGN §7, issue 7).

An HTTP process answers 503 on `/health/ready` from the first SIGTERM on while it keeps serving for the
drain (`OWR_SHUTDOWN_DRAIN_SECONDS`), then closes its listener and lets the requests in flight finish.
A sync cut by the worker's shutdown returns to the queue and completes after the restart, exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web
from redis.asyncio import Redis

from tests.deploy.conftest import DRAIN_SECONDS, health, own_redis_database, restart, sigterm_and_watch
from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin, fault_free_emulator
from tests.e2e.test_sync_journey import Watcher, assert_exact, funded_keys, wait_for
from tools.devinfra import free_port
from tools.devstack import ProcessGroup, ProcessSpec, system_specs

pytestmark = pytest.mark.e2e

SLOW_SECONDS = 4.0  # longer than the drain: these requests are still running when the listener closes


@dataclass
class Observed:
    """What a client saw around one SIGTERM (times in seconds after it)."""

    sigterm_at: float = 0.0
    first_not_ready: float | None = None
    live_while_not_ready: bool = False
    fast_ok: int = 0
    fast_failed: list[str] = field(default_factory=list)
    fast_ok_while_not_ready: int = 0
    listener_closed: float | None = None
    slow: list[int | str] = field(default_factory=list)
    slow_done: list[float] = field(default_factory=list)

    def since(self) -> float:
        return time.monotonic() - self.sigterm_at


async def sigterm_under_load(
    send_signal: Callable[[int], None], serving: str, admin: str, *, fast_path: str, slow_path: str
) -> Observed:
    """Start slow requests, keep a stream of quick ones going, SIGTERM, and watch readiness and answers."""
    seen = Observed()
    stop_load_at = DRAIN_SECONDS - 0.5  # after that the listener may close under a keep-alive request: by design
    sigterm_sent = asyncio.Event()

    async with httpx.AsyncClient(base_url=serving, timeout=30) as client, httpx.AsyncClient(timeout=2) as probe:

        async def slow() -> None:
            try:
                r = await client.get(slow_path)
                seen.slow.append(r.status_code)
            except httpx.HTTPError as exc:
                seen.slow.append(type(exc).__name__)
            seen.slow_done.append(seen.since())

        async def fast_load() -> None:
            while not sigterm_sent.is_set() or seen.since() < stop_load_at:
                try:
                    r = await client.get(fast_path)
                    if r.status_code == 200:
                        seen.fast_ok += 1
                        if seen.first_not_ready is not None:
                            seen.fast_ok_while_not_ready += 1
                    else:
                        seen.fast_failed.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    seen.fast_failed.append(type(exc).__name__)
                await asyncio.sleep(0.01)

        async def watch_health() -> None:
            await sigterm_sent.wait()
            while seen.since() < DRAIN_SECONDS + SLOW_SECONDS:
                try:
                    ready = (await probe.get(f"{admin}/health/ready")).status_code
                    live = (await probe.get(f"{admin}/health/live")).status_code
                except httpx.TransportError:
                    seen.listener_closed = seen.since()
                    return
                if ready == 503 and seen.first_not_ready is None:
                    seen.first_not_ready = seen.since()
                if ready == 503 and live == 200:
                    seen.live_while_not_ready = True
                await asyncio.sleep(0.05)

        slow_requests = [asyncio.create_task(slow()) for _ in range(5)]
        load = asyncio.create_task(fast_load())
        watcher = asyncio.create_task(watch_health())
        await asyncio.sleep(0.5)  # the slow requests are in flight, the quick ones flowing
        seen.sigterm_at = time.monotonic()
        send_signal(signal.SIGTERM)
        sigterm_sent.set()
        await asyncio.gather(*slow_requests, load, watcher)
    return seen


def assert_drained(seen: Observed) -> None:
    assert seen.first_not_ready is not None, "readiness never failed"
    assert seen.first_not_ready < 0.5, "readiness did not fail at once"
    assert seen.live_while_not_ready, "liveness must stay up while draining"
    assert seen.fast_ok_while_not_ready > 0, "requests must still be served during the drain"
    assert not seen.fast_failed, f"requests lost during the drain: {seen.fast_failed[:5]}"
    assert seen.slow == [200] * 5, f"requests in flight at SIGTERM: {seen.slow}"
    # The listener closed after the drain, while the slow requests were still running, and they completed.
    assert seen.listener_closed is not None
    assert DRAIN_SECONDS - 0.3 <= seen.listener_closed < min(seen.slow_done), (seen.listener_closed, seen.slow_done)


async def test_a_fastapi_service_drains_then_finishes_requests_in_flight(tmp_path) -> None:
    """The shared serve path (owr_shared.serve.run_service), as auth, keys and usage use it."""
    port = free_port()
    group = ProcessGroup(
        {
            **os.environ,
            "OWR_ENV": "test",
            "SLOW_PORT": str(port),
            "OWR_SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS),
            "OWR_SHUTDOWN_TIMEOUT_SECONDS": "10",
        },
        log_dir=tmp_path,
    )
    proc = group.start(ProcessSpec("slow", "tests.deploy.slow_app", port))
    try:
        group.wait_ready(timeout=30)
        url = f"http://127.0.0.1:{port}"
        seen = await sigterm_under_load(
            proc.popen.send_signal, url, url, fast_path="/fast", slow_path=f"/slow?seconds={SLOW_SECONDS}"
        )
        code = await asyncio.to_thread(proc.popen.wait, 15)
    finally:
        group.stop()
    assert_drained(seen)
    assert code in (0, -signal.SIGTERM), code  # uvicorn re-raises the signal once it has shut down


@pytest.fixture
async def slow_upstream() -> AsyncIterator[str]:
    """A stand-in for keys behind the gateway: /health/live, a quick route and a slow one."""

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def fast(_request: web.Request) -> web.Response:
        return web.json_response({"fast": True})

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_SECONDS)
        return web.json_response({"slow": True})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/api/v1/keys/fast", fast)
    app.router.add_get("/api/v1/keys/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_gateway_drains_then_finishes_proxied_requests_in_flight(
    deploy_system: System, slow_upstream: str, tmp_path
) -> None:
    """A gateway of its own (the stack's stays up) in front of a slow upstream, SIGTERMed under load."""
    spec = next(s for s in system_specs(deploy_system.ports) if s.name == "gateway")
    public, admin = free_port(), free_port()
    env = {
        **spec.env,
        "GATEWAY_PORT": str(public),
        "GATEWAY_ADMIN_PORT": str(admin),
        "GATEWAY_KEYS_URL": slow_upstream,
        "GATEWAY_ROUTES": '[{"prefix": "/api/v1/keys", "upstream": "keys", "auth": "none", "policy": "anonymous"}]',
        "GATEWAY_RATE_LIMITS": '{"anonymous": {"limit": 100000, "window": 60}}',
        # Its own Redis database: its load would otherwise fill the stack gateway's anonymous bucket for
        # 127.0.0.1 (same key, a limit of 120), and later tests would get 429s.
        "REDIS_URL": own_redis_database(deploy_system.env["REDIS_URL"]),
    }
    group = ProcessGroup(deploy_system.env, log_dir=tmp_path)
    proc = group.start(ProcessSpec("gateway-drain", spec.module, admin, env))
    try:
        group.wait_ready(timeout=30)
        seen = await sigterm_under_load(
            proc.popen.send_signal,
            f"http://127.0.0.1:{public}",
            f"http://127.0.0.1:{admin}",
            fast_path="/api/v1/keys/fast",
            slow_path="/api/v1/keys/slow",
        )
        code = await asyncio.to_thread(proc.popen.wait, 15)
    finally:
        group.stop()
    assert_drained(seen)
    assert code == 0, code


@pytest.mark.parametrize("name", ["auth", "keys", "usage"])
def test_each_service_fails_readiness_first_keeps_serving_for_the_drain_then_exits(
    deploy_system: System, name: str
) -> None:
    port = getattr(deploy_system.ports, name)
    seen = sigterm_and_watch(deploy_system.group, name, port)
    try:
        assert seen.first_not_ready is not None, seen
        assert seen.first_not_ready < 0.5, seen
        assert seen.live_while_not_ready, seen
        # The listener stays open through the drain, so requests routed before endpoints update still land.
        assert seen.first_refused is None or seen.first_refused >= DRAIN_SECONDS - 0.3, seen
        assert seen.exited_after < DRAIN_SECONDS + 5, seen
        assert seen.exit_code in (0, -signal.SIGTERM), seen
    finally:
        restart(deploy_system.group, seen.spec)
    assert health(port, "ready") == 200


@pytest.fixture
async def emulator(deploy_system: System) -> AsyncIterator[EmulatorAdmin]:
    async with fault_free_emulator(deploy_system.emulator) as admin:
        yield admin


@dataclass(frozen=True)
class HeldSync:
    watcher: Watcher
    key_id: str
    asked: datetime  # when the sync was asked for


@asynccontextmanager
async def _sync_held_upstream(
    deploy_system: System, emulator: EmulatorAdmin, name: str, *, latency_ms: int
) -> AsyncIterator[HeldSync]:
    """A new user's funded key `name`, its sync asked for while OpenRouter answers `/key` after
    `latency_ms`; entered once the sync job runs."""
    (key,) = await funded_keys(emulator, 1)
    async with httpx.AsyncClient(base_url=deploy_system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        key_id = await watcher.add(name, key["key"])
        await emulator.faults(latency_ms=latency_ms, paths=["/key"])
        asked = datetime.now(UTC)
        r = await client.post(f"/api/v1/keys/{key_id}/sync", headers=watcher.headers)
        assert r.status_code == 202, r.text
        await _job_running(deploy_system, key_id)
        yield HeldSync(watcher, key_id, asked)


async def _job_running(deploy_system: System, key_id: str) -> None:
    redis = Redis.from_url(deploy_system.env["REDIS_URL"])
    try:

        async def running() -> bool:
            return bool(await redis.exists(f"arq:in-progress:sync_key:{key_id}"))

        await wait_for(running, seconds=20, what="the sync job running")
    finally:
        await redis.aclose()


async def test_sigterm_during_a_sync_loses_nothing(deploy_system: System, emulator: EmulatorAdmin) -> None:
    """The worker stops while a sync waits on OpenRouter: the job finishes or returns to the queue, and
    after the restart the key is synced once, with its exact figure."""
    async with _sync_held_upstream(deploy_system, emulator, "stopped mid-sync", latency_ms=3000) as held:
        watcher, key_id, asked = held.watcher, held.key_id, held.asked

        seen = await asyncio.to_thread(sigterm_and_watch, deploy_system.group, "worker", deploy_system.ports.worker)
        assert seen.exit_code in (0, -signal.SIGTERM), seen
        redis = Redis.from_url(deploy_system.env["REDIS_URL"])
        try:
            queued = await redis.zscore("arq:queue", f"sync_key:{key_id}") is not None
        finally:
            await redis.aclose()
        synced = (await watcher.keys())[key_id]["last_synced_at"] is not None
        assert queued or synced, "the running sync neither finished nor went back to the queue"

        await emulator.clear_faults()
        await asyncio.to_thread(restart, deploy_system.group, seen.spec)
        await watcher.synced_since(asked, key_id)
        usage = await watcher.usage(key_id)
        days = [row for row in usage["daily"] if row["spend"] not in (0, "0")]
        assert len(days) == 1, usage["daily"]
        assert_exact(days[0]["spend"], "0.0123456789", "spend after a stop mid-sync")


async def test_the_worker_fails_readiness_first_and_finishes_its_running_job(
    deploy_system: System, emulator: EmulatorAdmin
) -> None:
    async with _sync_held_upstream(deploy_system, emulator, "finished before exit", latency_ms=2000) as held:
        watcher, key_id, asked = held.watcher, held.key_id, held.asked
        seen = await asyncio.to_thread(sigterm_and_watch, deploy_system.group, "worker", deploy_system.ports.worker)
        try:
            assert seen.first_not_ready is not None, "the worker never answered 503 before exiting"
            key_view = (await watcher.keys())[key_id]
            # Finished before the process exited: reported without any restart.
            assert key_view["last_synced_at"] is not None
            assert datetime.fromisoformat(key_view["last_synced_at"]) >= asked
        finally:
            await emulator.clear_faults()
            await asyncio.to_thread(restart, deploy_system.group, seen.spec)
