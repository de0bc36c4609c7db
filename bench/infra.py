"""The benchmarks' PostgreSQL and Redis (DATABASE_URL / REDIS_URL when set, else embedded under .data/bench/),
and the sync benchmarks' stack of real processes."""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from owr_shared.migrate import upgrade
from tools.devinfra import DATA_DIR, create_database, drop_database, embedded_postgres, embedded_redis
from tools.devstack import (
    Ports,
    ProcessGroup,
    ProcessSpec,
    base_env,
    emulator_api_url,
    emulator_spec,
    system_specs,
    worker_processes,
)


def bench_database(stack: ExitStack) -> tuple[str, str]:
    """A fresh database with every migration applied (dropped when `stack` closes), and the Redis URL."""
    admin_url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(DATA_DIR / "bench" / "pg"))
    redis_url = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis(DATA_DIR / "bench" / "redis"))
    database = f"owr_bench_{secrets.token_hex(3)}"
    database_url = create_database(admin_url, database)
    stack.callback(drop_database, admin_url, database)
    upgrade(database_url=database_url)
    return database_url, redis_url


@dataclass
class SyncStack:
    database_url: str
    env: dict[str, str]
    ports: Ports
    group: ProcessGroup
    workers: list[ProcessSpec]
    # Inference keys of one emulator account, not yet stored anywhere.
    plaintexts: list[str]

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.auth}"

    @property
    def keys_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.keys}"


def sync_stack(stack: ExitStack, settings: dict[str, str], *, workers: int, keys: int, latency_ms: int) -> SyncStack:
    """The emulator, auth, keys, usage and `workers` worker processes (stopped when `stack` closes) on a fresh
    database and a queue of their own, with `settings` on top; the emulator holds one account with `keys`
    inference keys and answers after `latency_ms`."""
    database_url, redis_url = bench_database(stack)
    queue = f"arq:bench:{secrets.token_hex(3)}"
    env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
    env.update({"KEYS_QUEUE_NAME": queue, "WORKER_QUEUE_NAME": queue, "LOG_LEVEL": "WARNING", **settings})
    ports = Ports.free()
    group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
    stack.callback(group.stop)
    group.start(emulator_spec(ports))
    started: list[ProcessSpec] = []
    for spec in system_specs(ports, openrouter_url=emulator_api_url(ports)):
        if spec.name == "worker":
            started = worker_processes(spec, workers)
            for worker in started:
                group.start(worker)
        elif spec.name != "gateway":
            group.start(spec)
    group.wait_ready(timeout=90)
    with httpx.Client(base_url=f"http://127.0.0.1:{ports.emulator}/_admin", timeout=120) as admin:
        account = admin.post("/accounts", json={"total_credits": "1000"}).json()["id"]
        created = admin.post(f"/accounts/{account}/keys", json={"kind": "inference", "count": keys})
        created.raise_for_status()
        plaintexts = [item["key"] for item in created.json()["items"]]
        admin.put("/faults", json={"latency_ms": latency_ms}).raise_for_status()
    return SyncStack(database_url, env, ports, group, started, plaintexts)
