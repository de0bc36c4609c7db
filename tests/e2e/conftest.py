"""The real system as separate processes on free ports, on the session's migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.devinfra import DATA_DIR
from tools.devstack import Ports, ProcessGroup, ProcessSpec, base_env, system_specs


@dataclass
class System:
    ports: Ports
    group: ProcessGroup
    log_dir: Path
    env: dict[str, str]

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def gateway_admin(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway_admin}"

    @property
    def auth(self) -> str:
        return f"http://127.0.0.1:{self.ports.auth}"

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@pytest.fixture(scope="session")
def system(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """gateway, auth, keys, usage and worker started with `python -m`, exactly as `make run` does."""
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    env = base_env(database_url, redis_url, "test", DATA_DIR / "test" / "secrets")
    # Fast argon2 is allowed only with OWR_ENV=test; it keeps the journey quick without changing its logic.
    env.update({"AUTH_ARGON2_MEMORY_KIB": "1024", "AUTH_ARGON2_TIME_COST": "1", "LOG_LEVEL": "INFO"})
    ports = Ports.free()
    group = ProcessGroup(env, log_dir=log_dir)
    try:
        for spec in system_specs(ports):
            group.start(spec)
        group.wait_ready(timeout=60)
        yield System(ports, group, log_dir, env)
    finally:
        group.stop()


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
