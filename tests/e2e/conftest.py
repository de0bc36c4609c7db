"""The real system as separate processes on free ports, on the session's migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.e2e.emulator_admin import EmulatorAdmin, fault_free_emulator
from tests.support.mail import Inbox, smtp_server
from tests.support.ports import LoopbackUrl
from tools.devinfra import DATA_DIR
from tools.devstack import (
    Ports,
    ProcessGroup,
    ProcessSpec,
    base_env,
    emulator_api_url,
    emulator_spec,
    system_specs,
)

# The worker's clocks shortened, so faults play out in seconds: a killed job is retried once its
# in-progress mark (job timeout + 10 s) and its key lock lapse, an open circuit probes again after 3 s.
FAST_WORKER = {
    "WORKER_JOB_TIMEOUT_SECONDS": "10",
    "WORKER_LOCK_TTL_SECONDS": "15",
    "WORKER_CIRCUIT_FAILURE_THRESHOLD": "3",
    "WORKER_CIRCUIT_OPEN_SECONDS": "3",
    "WORKER_OPENROUTER_MAX_RPS": "200",
    "WORKER_OPENROUTER_BURST": "50",
    "WORKER_OPENROUTER_RETRY_BASE_SECONDS": "0.05",
    "WORKER_OPENROUTER_RETRY_CAP_SECONDS": "0.5",
    "WORKER_JOB_RETRY_BASE_SECONDS": "0.5",
    "WORKER_JOB_RETRY_CAP_SECONDS": "2",
    "WORKER_MAX_JOBS": "50",
}

# Alert deliveries polled every second and retried after a second, so a receiver's failures play out quickly.
FAST_ALERTS = {
    "WORKER_DELIVERY_POLL_SECONDS": "1",
    "USAGE_DELIVERY_RETRY_SECONDS": "1,1,1,1,1,1,1",
    "MAIL_FROM": "Watcher <alerts@watcher.test>",
}


@dataclass
class System:
    ports: Ports
    group: ProcessGroup
    log_dir: Path
    env: dict[str, str]

    gateway = LoopbackUrl("ports.gateway")
    gateway_admin = LoopbackUrl("ports.gateway_admin")
    auth = LoopbackUrl("ports.auth")
    # The dashboard's own port (pages normally come through the gateway) and its admin port.
    web = LoopbackUrl("ports.web")
    web_admin = LoopbackUrl("ports.web_admin")
    # The OpenRouter emulator's root (its API under `/api/v1`, its admin surface under `/_admin`).
    emulator = LoopbackUrl("ports.emulator")

    def restart(self, name: str, *, kill: bool = True) -> None:
        """SIGKILL a process (no clean shutdown) and start it again, waiting until it is ready."""
        spec = self.group.kill(name) if kill else self.group.find(name).spec
        self.group.start(spec)
        self.group.wait_ready(timeout=60)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


def system_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The processes' environment: `make demo`'s, for tests, with the worker's clocks shortened."""
    env = base_env(database_url, redis_url, "test", DATA_DIR / "test" / "secrets")
    # Fast argon2 is allowed only with OWR_ENV=test; it keeps the journey quick without changing its logic.
    env.update({"AUTH_ARGON2_MEMORY_KIB": "1024", "AUTH_ARGON2_TIME_COST": "1", "LOG_LEVEL": "INFO", **FAST_WORKER})
    env.update(extra)
    return env


@contextmanager
def running_system(env: dict[str, str], log_dir: Path) -> Iterator[System]:
    """gateway, auth, keys, usage, worker and web started with `python -m`, as `make demo` does, the worker
    talking to the OpenRouter emulator (a process too); all stopped on exit."""
    ports = Ports.free()
    group = ProcessGroup(env, log_dir=log_dir)
    try:
        group.start(emulator_spec(ports))
        for spec in system_specs(ports, openrouter_url=emulator_api_url(ports)):
            group.start(spec)
        group.wait_ready(timeout=60)
        yield System(ports, group, log_dir, env)
    finally:
        group.stop()


@pytest.fixture(scope="package")
def mail_server() -> Iterator[tuple[Inbox, int]]:
    """The real SMTP server the session's worker sends alert email to."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_inbox(mail_server: tuple[Inbox, int]) -> Inbox:
    return mail_server[0]


@pytest.fixture(scope="package")
def system(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, mail_server: tuple[Inbox, int]
) -> Iterator[System]:
    """The whole system for the end-to-end suite, on the session's database and Redis. Stopped when the last
    end-to-end test is done: its worker polls the shared outbox and queue, and would otherwise claim the
    deliveries and jobs of every suite that runs after this one."""
    env = system_env(database_url, redis_url, SMTP_URL=f"smtp://127.0.0.1:{mail_server[1]}", **FAST_ALERTS)
    with running_system(env, tmp_path_factory.mktemp("e2e-logs")) as system:
        yield system


@pytest.fixture
async def emulator(system: System) -> AsyncIterator[EmulatorAdmin]:
    async with fault_free_emulator(system.emulator) as admin:
        yield admin


async def fresh_login_window(system: System) -> None:
    """Start the gateway's per-IP login window (10 a minute) again, as for a new client."""
    redis = Redis.from_url(system.env["REDIS_URL"])
    try:
        async for key in redis.scan_iter("owr:rl:login:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


@pytest.fixture(autouse=True)
async def _fresh_login_window(system: System) -> None:
    """Each test signs up from 127.0.0.1 with a fresh per-IP login window, as a new client would; without
    this, the suite's own sign-ups would exhaust the 10-per-minute policy it also tests."""
    await fresh_login_window(system)


def second_gateway(system: System) -> tuple[ProcessGroup, str]:
    """Another gateway process in front of the same auth and Redis (to show limits are shared)."""
    ports = Ports.free()
    spec = next(s for s in system_specs(system.ports) if s.name == "gateway")
    extra = ProcessSpec(
        "gateway-2",
        spec.module,
        ports.gateway_admin,
        {**spec.env, "GATEWAY_PORT": str(ports.gateway), "GATEWAY_ADMIN_PORT": str(ports.gateway_admin)},
    )
    group = ProcessGroup(system.env, log_dir=system.log_dir)
    group.start(extra)
    group.wait_ready(timeout=30)
    return group, f"http://127.0.0.1:{ports.gateway}"
