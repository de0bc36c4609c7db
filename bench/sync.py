"""Sync throughput: 2,000 keys synced by the real worker against the OpenRouter emulator at 50 ms per request.

Every process is real (emulator, auth, keys, usage, worker, on PostgreSQL and Redis); the upstream limit
is set high so the worker, not the limiter, is measured. The run enqueues one `sync_key` job per key, as the
due-keys cron does, and times until every key reports its sync to the vault. It prints keys/s and the
worker's peak resident memory, then runs the original plan's approach on a sample of the same keys (one
key at a time, the same four calls, a 0.35 s pause after each) and prints the ratio. Target: >= 300 keys/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from arq import create_pool
from arq.connections import RedisSettings

from bench.infra import bench_database
from tools.devinfra import DATA_DIR
from tools.devstack import Ports, ProcessGroup, base_env, emulator_api_url, emulator_spec, system_specs

PASSWORD = "benchmark passphrase, long enough"  # noqa: S105 - a throwaway bench user
SEQUENTIAL_PAUSE_SECONDS = 0.35


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used (user, nice, system, irq, softirq; not idle, iowait
    or steal): PostgreSQL, Redis and the bench itself included."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def store_keys(auth: str, keys: str, plaintexts: list[str]) -> tuple[str, list[str]]:
    """A user, and every key stored in the vault through the public API (16 at a time): (workspace, key ids)."""
    email = f"bench.{secrets.token_hex(4)}@example.com"
    async with httpx.AsyncClient(timeout=30) as client:
        (
            await client.post(f"{auth}/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        ).raise_for_status()
        r = await client.post(f"{auth}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        headers = {"authorization": f"Bearer {r.json()['access_token']}"}
        workspace_id = str((await client.get(f"{auth}/api/v1/auth/me", headers=headers)).json()["workspace"]["id"])
        ids: list[str] = []
        gate = asyncio.Semaphore(16)

        async def store(n: int, plaintext: str) -> None:
            async with gate:
                r = await client.post(f"{keys}/api/v1/keys", headers=headers, json={"name": f"k{n}", "key": plaintext})
                r.raise_for_status()
                ids.append(str(r.json()["id"]))

        await asyncio.gather(*(store(n, p) for n, p in enumerate(plaintexts)))
        return workspace_id, ids


async def synced_count(database_url: str, key_ids: list[str]) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM keys.openrouter_keys WHERE id = ANY($1::uuid[]) AND last_synced_at IS NOT NULL",
            key_ids,
        )
        return int(count)
    finally:
        await conn.close()


async def run_worker_sync(
    database_url: str, redis_url: str, queue: str, key_ids: list[str], worker_pid: int
) -> tuple[float, float]:
    """Enqueue a sync of every key and wait until all are synced; (keys/s, worker peak MiB)."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue)
    start = time.perf_counter()
    try:
        for key_id in key_ids:
            await pool.enqueue_job("sync_key", key_id=key_id, _job_id=f"sync_key:{key_id}")
        while (done := await synced_count(database_url, key_ids)) < len(key_ids):
            if time.perf_counter() - start > 600:
                raise TimeoutError(f"only {done} of {len(key_ids)} keys synced in 10 minutes")
            await asyncio.sleep(0.2)
    finally:
        await pool.aclose()
    elapsed = time.perf_counter() - start
    return len(key_ids) / elapsed, peak_rss_mib(worker_pid)


async def run_sequential(
    env: dict[str, str], ports: Ports, emulator_api: str, workspace_id: str, key_ids: list[str]
) -> float:
    """The original plan: one key at a time, the same calls the worker makes, then a 0.35 s pause."""
    base = {name: f"http://127.0.0.1:{getattr(ports, name)}" for name in ("auth", "keys", "usage")}
    async with httpx.AsyncClient(timeout=30) as client:

        async def token(audience: str, scope: str) -> dict[str, str]:
            body = {
                "client_id": env["WORKER_SERVICE_CLIENT_ID"],
                "client_secret": env["WORKER_SERVICE_CLIENT_SECRET"],
                "audience": audience,
                "scope": scope,
            }
            r = await client.post(f"{base['auth']}/internal/service-tokens", json=body)
            r.raise_for_status()
            return {"authorization": f"Bearer {r.json()['access_token']}"}

        keys_auth = await token("owr-keys", "keys:reveal keys:status")
        usage_auth = await token("owr-usage", "usage:ingest")
        start = time.perf_counter()
        for key_id in key_ids:
            r = await client.post(f"{base['keys']}/internal/keys/{key_id}/reveal", headers=keys_auth)
            r.raise_for_status()
            secret = r.json()["key"]
            r = await client.get(f"{emulator_api}/key", headers={"authorization": f"Bearer {secret}"})
            r.raise_for_status()
            data: dict[str, Any] = r.json()["data"]
            observed = r.headers["date"]
            observed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(observed, "%a, %d %b %Y %H:%M:%S GMT"))
            item = {"key_id": key_id, "workspace_id": workspace_id, "observed_at": observed_at, "snapshot": data}
            r = await client.post(f"{base['usage']}/internal/snapshots", headers=usage_auth, json={"items": [item]})
            r.raise_for_status()
            report = {"status": "valid", "kind": "inference", "last_synced_at": observed_at}
            r = await client.post(f"{base['keys']}/internal/keys/{key_id}/status", headers=keys_auth, json=report)
            r.raise_for_status()
            await asyncio.sleep(SEQUENTIAL_PAUSE_SECONDS)
        return len(key_ids) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--max-jobs", type=int, default=200, help="WORKER_MAX_JOBS: jobs one worker runs at once")
    parser.add_argument("--sequential-sample", type=int, default=20, help="keys the sequential approach syncs")
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)

        queue = f"arq:bench:{secrets.token_hex(3)}"
        env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
        env.update(
            {
                "KEYS_QUEUE_NAME": queue,
                "WORKER_QUEUE_NAME": queue,
                "WORKER_MAX_JOBS": str(args.max_jobs),
                # The upstream limit set high: the worker is measured, not the limiter's budget.
                "WORKER_OPENROUTER_MAX_RPS": "10000",
                "WORKER_OPENROUTER_BURST": "1000",
                "LOG_LEVEL": "WARNING",
            }
        )
        ports = Ports.free()
        group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
        stack.callback(group.stop)
        group.start(emulator_spec(ports))
        for spec in system_specs(ports, openrouter_url=emulator_api_url(ports)):
            if spec.name != "gateway":
                group.start(spec)
        group.wait_ready(timeout=90)
        worker_pid = group.find("worker").popen.pid

        emulator = f"http://127.0.0.1:{ports.emulator}"
        with httpx.Client(base_url=f"{emulator}/_admin", timeout=60) as admin:
            account = admin.post("/accounts", json={"total_credits": "1000"}).json()["id"]
            created = admin.post(f"/accounts/{account}/keys", json={"kind": "inference", "count": args.keys})
            created.raise_for_status()
            plaintexts = [item["key"] for item in created.json()["items"]]
            admin.put("/faults", json={"latency_ms": args.latency_ms}).raise_for_status()

        print(f"sync throughput: {args.keys} keys, emulator latency {args.latency_ms} ms, max_jobs {args.max_jobs}")
        started = time.perf_counter()
        workspace_id, key_ids = asyncio.run(
            store_keys(f"http://127.0.0.1:{ports.auth}", f"http://127.0.0.1:{ports.keys}", plaintexts)
        )
        print(f"  stored {len(key_ids)} keys in the vault in {time.perf_counter() - started:.1f} s")

        pids = {proc.spec.name: proc.popen.pid for proc in group.running}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        busy_before = machine_busy_seconds()
        rate, peak = asyncio.run(run_worker_sync(database_url, redis_url, queue, key_ids, worker_pid))
        # Where the time went: CPU seconds each process spent per key synced, and the whole machine's
        # (PostgreSQL, Redis and the bench's own polling included; steal excluded).
        busy = (machine_busy_seconds() - busy_before) / len(key_ids) * 1000
        per_key = {name: (cpu_seconds(pid) - cpu_before[name]) / len(key_ids) * 1000 for name, pid in pids.items()}
        print("  CPU per key synced: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_key.items()))
        print(f"  CPU per key synced, whole machine: {busy:.2f} ms")
        print(f"  worker (ARQ, concurrent):    {rate:7.1f} keys/s   worker peak RSS {peak:.0f} MiB   (target >= 300)")
        sample = key_ids[: args.sequential_sample]
        sequential = asyncio.run(run_sequential(env, ports, emulator_api_url(ports), workspace_id, sample))
        print(f"  sequential + 0.35 s pause:   {sequential:7.2f} keys/s   ({len(sample)} keys)")
        print(f"  ratio worker/sequential:     {rate / sequential:7.0f}x")
        print(
            json.dumps(
                {
                    "keys_per_s": round(rate, 1),
                    "sequential_keys_per_s": round(sequential, 2),
                    "peak_mib": round(peak),
                    "machine_cpu_ms_per_key": round(busy, 2),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
