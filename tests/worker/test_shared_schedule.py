"""Two real worker processes share the due schedule: 2 workspaces x 200 keys, every one synced exactly
once through the workers' due scans, none left behind.

The stack (the OpenRouter emulator, auth, keys, usage, two workers) runs as separate processes on a
database of its own, so no other suite's worker claims its keys and no other suite's keys get in its
way. keys queues the first syncs of new keys to a queue no worker reads, and the test drops those jobs
(an ARQ job id is taken in every queue): every sync here comes from the workers' scans, which run as each
worker starts.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.deploy.conftest import own_redis_database
from tests.e2e.conftest import system_env
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_keys_journey import signed_in
from tests.support.db import migrated_database
from tests.support.redis import flush
from tools.devstack import (
    Ports,
    ProcessGroup,
    ProcessSpec,
    emulator_api_url,
    emulator_spec,
    system_specs,
    worker_processes,
)

WORKSPACES, PER_WORKSPACE = 2, 200


@pytest.fixture
def stack_database(infra: dict[str, str]) -> Iterator[str]:
    with migrated_database(infra["database_url"], "owr_test_schedule") as url:
        yield url


async def store_workspace_keys(ports: Ports, plaintexts: list[str]) -> list[str]:
    """A new user (so a new workspace) storing `plaintexts` through keys' public API; the key ids."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.auth}", timeout=30) as auth:
        headers = await signed_in(auth)
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.keys}", timeout=30) as keys:

        async def store(n: int, plaintext: str) -> str:
            async with gate:
                r = await keys.post("/api/v1/keys", headers=headers, json={"name": f"k{n}", "key": plaintext})
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

        return list(await asyncio.gather(*(store(n, p) for n, p in enumerate(plaintexts))))


async def wait_synced(database_url: str, key_ids: list[str], seconds: float) -> None:
    conn = await asyncpg.connect(database_url)
    sql = "SELECT count(*) FROM keys.openrouter_keys WHERE id = ANY($1::uuid[]) AND last_synced_at IS NOT NULL"
    deadline = time.monotonic() + seconds
    try:
        while (done := await conn.fetchval(sql, key_ids)) < len(key_ids):
            assert time.monotonic() < deadline, f"only {done} of {len(key_ids)} keys synced in {seconds:.0f} s"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def syncs_per_key(database_url: str, key_ids: list[str]) -> dict[str, int]:
    """Each key's sync reports (keys' audit: one `status_reported` per sync), 0 for a key never reported."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT key_id::text, count(*) AS n FROM keys.audit_events "
            "WHERE key_id = ANY($1::uuid[]) AND action = 'status_reported' GROUP BY key_id",
            key_ids,
        )
    finally:
        await conn.close()
    return dict.fromkeys(key_ids, 0) | {row["key_id"]: int(row["n"]) for row in rows}


def scans(log: Path, job: str = "schedule_due_keys") -> list[dict[str, Any]]:
    """The worker's due-scan summaries (`due_keys_enqueued`) from its JSON log."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "due_keys_enqueued" and entry.get("job_name") == job:
            found.append(entry)
    return found


def sync_jobs_done(worker: ProcessSpec) -> float:
    text = httpx.get(f"http://127.0.0.1:{worker.health_port}/metrics", timeout=5).text
    prefix = 'owr_jobs_total{job="sync_key",outcome="done"} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


@pytest.mark.timeout(300)
async def test_two_worker_processes_share_the_schedule_without_doubling_or_leaving_a_key(
    stack_database, redis_url, tmp_path
):
    queue = f"arq:shared-schedule:{secrets.token_hex(3)}"
    redis = own_redis_database(redis_url)
    env = system_env(
        stack_database,
        redis,
        KEYS_QUEUE_NAME=f"{queue}:unread",
        WORKER_QUEUE_NAME=queue,
        # Small pages, so the two scans take many claims each; a budget that spreads the syncs over seconds.
        WORKER_DUE_PAGE_SIZE="25",
        WORKER_OPENROUTER_MAX_RPS="80",
        LOG_JSON="true",
    )
    ports = Ports.free()
    group = ProcessGroup(env, log_dir=tmp_path)
    try:
        group.start(emulator_spec(ports))
        specs = {spec.name: spec for spec in system_specs(ports, openrouter_url=emulator_api_url(ports))}
        for name in ("auth", "keys", "usage"):
            group.start(specs[name])
        group.wait_ready(timeout=60)
        emulator = EmulatorAdmin(f"http://127.0.0.1:{ports.emulator}")
        try:
            account = await emulator.account("100")
            plaintexts = [k["key"] for k in await emulator.keys(account, "inference", WORKSPACES * PER_WORKSPACE)]
            key_ids: list[str] = []
            for w in range(WORKSPACES):
                key_ids += await store_workspace_keys(ports, plaintexts[w * PER_WORKSPACE : (w + 1) * PER_WORKSPACE])

            unread = Redis.from_url(redis)
            try:
                await unread.delete(f"{queue}:unread", *(f"arq:job:sync_key:{key_id}" for key_id in key_ids))
            finally:
                await unread.aclose()
            # Every key is due (never synced); both workers scan as they start.
            workers = worker_processes(specs["worker"], 2)
            for worker in workers:
                group.start(worker)
            group.wait_ready(timeout=60)
            await wait_synced(stack_database, key_ids, 120)
            await asyncio.sleep(2)  # a doubled job would still be running or queued: give it time to report
            stats = await emulator.stats()
        finally:
            await emulator.aclose()

        per_key = await syncs_per_key(stack_database, key_ids)
        spread = {n: list(per_key.values()).count(n) for n in set(per_key.values())}
        assert spread == {1: len(key_ids)}  # syncs a key -> keys with that many
        assert stats["requests"].get("/key") == len(key_ids)  # one GET /key a key: no sync ran twice
        # The scans of both workers together handed out each key once (keys' leases), and both workers ran syncs.
        summaries = [scan for worker in workers for scan in scans(tmp_path / f"{worker.name}.log")]
        assert sum(int(scan["due"]) for scan in summaries) == len(key_ids)
        assert all(sync_jobs_done(worker) > 0 for worker in workers)
    finally:
        group.stop()
        await flush(redis)
