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
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.infra import sync_stack
from bench.sync import INTERVAL_SECONDS, make_all_due, round_figures, store_keys, wait_synced


async def sync_span(database_url: str, key_ids: list[str]) -> tuple[datetime, datetime]:
    """When the first and the last of `key_ids` were synced."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT min(last_synced_at), max(last_synced_at) FROM keys.openrouter_keys WHERE id = ANY($1::uuid[])",
            key_ids,
        )
        return row[0], row[1]
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
        settings = {
            "KEYS_SYNC_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
            "KEYS_MAX_KEYS_PER_WORKSPACE": str(max(args.large, args.small, 1000)),
            "WORKER_OPENROUTER_MAX_RPS": str(args.rps),
            "WORKER_DUE_BACKLOG_SECONDS": str(args.backlog_seconds),
            "WORKER_MAX_JOBS": "50",
        }
        count = args.large + args.small
        system = sync_stack(stack, settings, workers=2, keys=count, latency_ms=args.latency_ms)
        database_url, plaintexts = system.database_url, system.plaintexts
        auth_url, keys_url = system.auth_url, system.keys_url
        health_ports = [worker.health_port for worker in system.workers]

        print(
            f"fair sharing: a workspace of {args.large} due keys and one of {args.small}, 2 worker processes, "
            f"OpenRouter budget {args.rps:g}/s, backlog {args.backlog_seconds:g} s, emulator latency {args.latency_ms} ms"
        )
        _, large = asyncio.run(store_keys(auth_url, keys_url, plaintexts[: args.large]))
        _, small = asyncio.run(store_keys(auth_url, keys_url, plaintexts[args.large :]))
        every = large + small
        asyncio.run(wait_synced(database_url, every, None, 1800))  # the first syncs that adding them queued

        full_before = backlog_full_scans(health_ports)
        sleep_until_just_before_the_scan()
        due_at = asyncio.run(make_all_due(database_url, every))
        asyncio.run(wait_synced(database_url, small, due_at, 600))
        asyncio.run(wait_synced(database_url, every, due_at, 3600))
        time.sleep(2)  # a doubled sync would report within this
        started, _ = asyncio.run(sync_span(database_url, every))
        small_done, large_done = (
            asyncio.run(sync_span(database_url, small))[1],
            asyncio.run(sync_span(database_url, large))[1],
        )
        figures = asyncio.run(round_figures(database_url, every, due_at))
        full_scans = backlog_full_scans(health_ports) - full_before

        def since(moment: datetime, then: datetime) -> float:
            return (then - moment).total_seconds()

        # From the moment the keys fell due (what a user waits) and from the round's first sync (the scan).
        small_s, large_s = since(due_at, small_done), since(due_at, large_done)
        ratio = large_s / max(small_s, 1e-3)
        # The claim before: keys by id, one queue in that order; the small keys' last position in it.
        ordered = sorted(every, key=uuid.UUID)
        position = max(ordered.index(k) for k in small) + 1
        print("  every key due at once, 2 s before a minute's scan:")
        print(
            f"    small workspace all synced: {small_s:7.2f} s after falling due "
            f"({since(started, small_done):.2f} s after the round's first sync)"
        )
        print(
            f"    large workspace all synced: {large_s:7.2f} s after falling due "
            f"({since(started, large_done):.2f} s after the round's first sync)"
        )
        print(f"    ratio large/small:          {ratio:7.1f}x")
        print(
            f"    in id order (the claim before) the small workspace's last key was {position} of {len(every)} in "
            f"the queue: about {position / args.rps:.1f} s into the round at this budget"
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
