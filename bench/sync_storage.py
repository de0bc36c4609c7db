"""Storage at scale for `bench.sync`: snapshot compaction on a sample of keys, and the usage tables' sizes."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tools.devstack import Ports


async def compaction_sample(
    database_url: str, env: dict[str, str], ports: Ports, key_ids: list[str]
) -> tuple[int, int]:
    """Give each sampled key 144 snapshots a day 3-5 days back (copies of its stored one), compact through
    usage's internal API as the cron does; (max rows of a key-day before, after)."""
    conn = await asyncpg.connect(database_url)
    days = "SELECT (now() AT TIME ZONE 'UTC')::date - d FROM generate_series(3, 5) AS d"
    count_sql = (
        "SELECT max(n) FROM (SELECT count(*) AS n FROM usage.snapshots WHERE key_id = ANY($1::uuid[]) "
        "AND observed_at < now() - interval '48 hours' GROUP BY key_id, (observed_at AT TIME ZONE 'UTC')::date) c"
    )
    try:
        columns = [
            r["attname"]
            for r in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'usage.snapshots'::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum"
            )
        ]
        others = ", ".join(f'"{c}"' for c in columns if c != "observed_at")
        await conn.execute(
            f"""INSERT INTO usage.snapshots ("observed_at", {others})
            SELECT day::timestamp AT TIME ZONE 'UTC' + slot * interval '10 minutes', {others}
            FROM (SELECT DISTINCT ON (key_id) * FROM usage.snapshots WHERE key_id = ANY($1::uuid[])
                  ORDER BY key_id, observed_at DESC) s
            CROSS JOIN ({days}) AS days(day) CROSS JOIN generate_series(0, 143) AS slot
            ON CONFLICT DO NOTHING""",  # noqa: S608 - column names from the catalog
            key_ids,
        )
        before = int(await conn.fetchval(count_sql, key_ids))
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=120) as client:
        body = {
            "client_id": env["WORKER_SERVICE_CLIENT_ID"],
            "client_secret": env["WORKER_SERVICE_CLIENT_SECRET"],
            "audience": "owr-usage",
            "scope": "usage:cleanup",
        }
        r = await client.post(f"http://127.0.0.1:{ports.auth}/internal/service-tokens", json=body)
        r.raise_for_status()
        headers = {"authorization": f"Bearer {r.json()['access_token']}"}
        request: dict[str, Any] = {"keys": 1000}
        while True:
            r = await client.post(
                f"http://127.0.0.1:{ports.usage}/internal/snapshots/compaction", headers=headers, json=request
            )
            r.raise_for_status()
            if r.json()["next_after"] is None:
                break
            request["after"] = r.json()["next_after"]
    conn = await asyncpg.connect(database_url)
    try:
        after = int(await conn.fetchval(count_sql, key_ids))
    finally:
        await conn.close()
    return before, after


# Rows a key adds to each usage table in a year at the 10-minute interval (an inference key, totals only):
# snapshots 144 a day without compaction, 2 a day plus 48 h of full history with it.
ROWS_PER_KEY_YEAR = {
    "snapshots": (144 * 365, 2 * 365 + 144 * 2),
    "key_days": (365, 365),
    "key_states": (1, 1),
    "daily_usage": (365, 365),
    "daily_key_totals": (365, 365),
    "monthly_key_totals": (12, 12),
}


async def usage_table_sizes(database_url: str) -> dict[str, tuple[int, int]]:
    """{table: (bytes with indexes and TOAST, rows)} of every usage table."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM ANALYZE")
        out = {}
        for r in await conn.fetch("SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'usage' ORDER BY 1"):
            name = r["relname"]
            size = await conn.fetchval(f"SELECT pg_total_relation_size('usage.{name}')")
            rows = await conn.fetchval(f"SELECT count(*) FROM usage.{name}")  # noqa: S608
            out[name] = (int(size), int(rows))
        return out
    finally:
        await conn.close()
