"""Fair sharing of the sync schedule: a large workspace (default 1,000 due keys) and a small one (3 keys)
fall due at once, and two real worker processes sync them through their due scans under a real OpenRouter
budget (default 50 requests/s for both workers together).

Every process is real (emulator, auth, keys, usage, two workers, on PostgreSQL and Redis). It prints, from
the moment the keys fell due (just before a minute's scan) and from the round's first sync:
- the time until every key of the small workspace is synced, and of the large one, and their ratio;
- where the small workspace's keys stood in the id order the claim used before (its queue position, and
  the wait that would have meant at this budget);
- syncs per key (target exactly 1), and the scans that stopped at a full backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.infra import bench_database
from bench.sync import INTERVAL_SECONDS, make_all_due, round_figures, store_keys, wait_synced
from tools.devinfra import DATA_DIR
from tools.devstack import (
    Ports,
    ProcessGroup,
    base_env,
    emulator_api_url,
    emulator_spec,
    system_specs,
    worker_processes,
)


async def done_at(database_url: str, key_ids: list[str]) -> datetime:
    """When the last of `key_ids` was synced."""
    conn = await asyncpg.connect(database_url)
    try:
        last: datetime = await conn.fetchval(
            "SELECT max(last_synced_at) FROM keys.openrouter_keys WHERE id = ANY($1::uuid[])", key_ids
        )
        return last
    finally:
        await conn.close()


async def first_sync_at(database_url: str, key_ids: list[str]) -> datetime:
    conn = await asyncpg.connect(database_url)
    try:
        first: datetime = await conn.fetchval(
            "SELECT min(last_synced_at) FROM keys.openrouter_keys WHERE id = ANY($1::uuid[])", key_ids
        )
        return first
    finally:
        await conn.close()


def backlog_full_scans(ports: list[int]) -> float:
    """owr_due_scans_backlog_full_total of the minute scan, summed over the workers."""
    total = 0.0
    prefix = 'owr_due_scans_backlog_full_total{scan="schedule_due_keys"} '
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        total += sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))
    return total


def sleep_until_just_before_the_scan() -> None:
    """The workers scan at second 5 of each minute: fall due at second 3, so the next scan finds the keys."""
    now = time.time()
    target = now - now % 60 + 3
    if target <= now + 1:
        target += 60
    time.sleep(target - now)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=1000, help="due keys of the large workspace")
    parser.add_argument("--small", type=int, default=3, help="due keys of the small workspace")
    parser.add_argument("--rps", type=float, default=50, help="WORKER_OPENROUTER_MAX_RPS, both workers together")
    parser.add_argument("--backlog-seconds", type=float, default=60, help="WORKER_DUE_BACKLOG_SECONDS")
    parser.add_argument("--latency-ms", type=int, default=50, help="the emulator's answer time")
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)
        queue = f"arq:bench:{secrets.token_hex(3)}"
        env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
        env.update(
            {
                "KEYS_QUEUE_NAME": queue,
                "WORKER_QUEUE_NAME": queue,
                "KEYS_SYNC_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
                "KEYS_MAX_KEYS_PER_WORKSPACE": str(max(args.large, args.small, 1000)),
                "WORKER_OPENROUTER_MAX_RPS": str(args.rps),
                "WORKER_DUE_BACKLOG_SECONDS": str(args.backlog_seconds),
                "WORKER_MAX_JOBS": "50",
                "LOG_LEVEL": "WARNING",
            }
        )
        ports = Ports.free()
        group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
        stack.callback(group.stop)
        group.start(emulator_spec(ports))
        workers = []
        for spec in system_specs(ports, openrouter_url=emulator_api_url(ports)):
            if spec.name == "worker":
                workers = worker_processes(spec, 2)
                for worker in workers:
                    group.start(worker)
            elif spec.name != "gateway":
                group.start(spec)
        group.wait_ready(timeout=90)

        with httpx.Client(base_url=f"http://127.0.0.1:{ports.emulator}/_admin", timeout=120) as admin:
            account = admin.post("/accounts", json={"total_credits": "1000"}).json()["id"]
            created = admin.post(
                f"/accounts/{account}/keys", json={"kind": "inference", "count": args.large + args.small}
            )
            created.raise_for_status()
            plaintexts = [item["key"] for item in created.json()["items"]]
            admin.put("/faults", json={"latency_ms": args.latency_ms}).raise_for_status()
        auth_url, keys_url = f"http://127.0.0.1:{ports.auth}", f"http://127.0.0.1:{ports.keys}"

        print(
            f"fair sharing: a workspace of {args.large} due keys and one of {args.small}, 2 worker processes, "
            f"OpenRouter budget {args.rps:g}/s, backlog {args.backlog_seconds:g} s, emulator latency {args.latency_ms} ms"
        )
        _, large = asyncio.run(store_keys(auth_url, keys_url, plaintexts[: args.large]))
        _, small = asyncio.run(store_keys(auth_url, keys_url, plaintexts[args.large :]))
        every = large + small
        asyncio.run(wait_synced(database_url, every, None, 1800))  # the first syncs that adding them queued

        full_before = backlog_full_scans([w.health_port for w in workers])
        sleep_until_just_before_the_scan()
        due_at = asyncio.run(make_all_due(database_url, every))
        asyncio.run(wait_synced(database_url, small, due_at, 600))
        asyncio.run(wait_synced(database_url, every, due_at, 3600))
        time.sleep(2)  # a doubled sync would report within this
        started = asyncio.run(first_sync_at(database_url, every))
        small_done, large_done = asyncio.run(done_at(database_url, small)), asyncio.run(done_at(database_url, large))
        figures = asyncio.run(round_figures(database_url, every, due_at))
        full_scans = backlog_full_scans([w.health_port for w in workers]) - full_before

        def since(moment: datetime, then: datetime) -> float:
            return (then - moment).total_seconds()

        small_s, large_s = since(started, small_done), since(started, large_done)
        ratio = large_s / max(small_s, 1e-3)
        # The claim before: keys by id, one queue in that order; the small keys' last position in it.
        ordered = sorted(every, key=uuid.UUID)
        position = max(ordered.index(k) for k in small) + 1
        print("  every key due at once, just before a minute's scan:")
        print(
            f"    small workspace all synced: {small_s:7.2f} s after the round's first sync "
            f"({since(due_at, small_done):.1f} s after falling due)"
        )
        print(
            f"    large workspace all synced: {large_s:7.2f} s after the round's first sync "
            f"({since(due_at, large_done):.1f} s after falling due)"
        )
        print(f"    ratio large/small:          {ratio:7.1f}x   (the small one waits for no share of the large one)")
        print(
            f"    in id order (the claim before) the small workspace's last key was {position} of {len(every)} in "
            f"the queue: about {position / args.rps:.1f} s at this budget"
        )
        print(
            f"    syncs per key:              {figures['min_syncs']:.0f}..{figures['max_syncs']:.0f} "
            f"({figures['keys_synced']:.0f} of {len(every)} keys synced; target exactly 1)"
        )
        print(f"    scans stopped at a full backlog: {full_scans:.0f}")
        print(
            json.dumps(
                {
                    "large_keys": args.large,
                    "small_keys": args.small,
                    "rps": args.rps,
                    "small_synced_s": round(small_s, 2),
                    "large_synced_s": round(large_s, 2),
                    "ratio": round(ratio, 1),
                    "id_order_small_position": position,
                    "syncs_per_key": [figures["min_syncs"], figures["max_syncs"]],
                    "backlog_full_scans": full_scans,
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
