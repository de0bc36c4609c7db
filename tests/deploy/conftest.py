"""The real processes for the deploy tests: their own stack (these tests stop and restart processes, so
they never share the end-to-end suite's), with a shutdown drain configured as in the deployments."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.conftest import System, running_system, system_env
from tools.devstack import ProcessGroup, ProcessSpec

DRAIN_SECONDS = 2.0


def own_redis_database(redis_url: str) -> str:
    """Another Redis database than the session's: no other stack's worker can take these jobs (nor ours theirs)."""
    base, _, number = redis_url.rpartition("/")
    return f"{base}/{int(number) % 15 + 1}" if number.isdigit() else redis_url


@pytest.fixture(scope="package")
def deploy_system(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Stopped when the last deploy test is done, before the end-to-end suite starts its own stack."""
    env = system_env(
        database_url,
        own_redis_database(redis_url),
        OWR_SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        OWR_SHUTDOWN_TIMEOUT_SECONDS="10",
    )
    with running_system(env, tmp_path_factory.mktemp("deploy-logs")) as system:
        yield system


def health(port: int, which: str) -> int | None:
    """The status of `/health/<which>`, or None when nothing answers."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/{which}", timeout=1).status_code
    except httpx.TransportError:
        return None


@dataclass
class Stopped:
    """What polling a process's health showed between its SIGTERM and its exit (seconds after SIGTERM)."""

    spec: ProcessSpec
    exit_code: int
    exited_after: float
    first_not_ready: float | None
    first_refused: float | None
    live_while_not_ready: bool


def sigterm_and_watch(group: ProcessGroup, name: str, port: int, *, timeout: float = 30.0) -> Stopped:
    """SIGTERM one process, poll its health until it exits, and forget it (`restart` starts it again)."""
    proc = group.find(name)
    start = time.monotonic()
    proc.popen.send_signal(signal.SIGTERM)
    first_not_ready = first_refused = None
    live_while_not_ready = False
    while proc.popen.poll() is None and time.monotonic() - start < timeout:
        ready, live = health(port, "ready"), health(port, "live")
        now = time.monotonic() - start
        if ready == 503 and first_not_ready is None:
            first_not_ready = now
        if ready == 503 and live == 200:
            live_while_not_ready = True
        if ready is None and first_refused is None:
            first_refused = now
        time.sleep(0.05)
    try:
        code = proc.popen.wait(timeout=max(0.1, timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        proc.popen.kill()
        code = proc.popen.wait()
    group.running.remove(proc)
    return Stopped(proc.spec, code, time.monotonic() - start, first_not_ready, first_refused, live_while_not_ready)


def restart(group: ProcessGroup, spec: ProcessSpec) -> None:
    group.start(spec)
    group.wait_ready(timeout=60)
