"""Usage reads at size: 10 million daily rows, one workspace holding 200 keys x 365 days x 30 models.

The rows are loaded with COPY into a fresh database (rows/s printed), the rollups are built from them in one
pass each, and the usage service runs as a real process. Every read goes through HTTP with a real access JWT
(minted here with a throwaway Ed25519 key; usage fetches its JWKS from a tiny server in this process):

- the summary over one year of the large workspace, p50/p95 (target p95 <= 50 ms);
- a daily page (50 rows, default sort; early and deep pages, a key filter, a model filter), p95 (<= 20 ms);
- pages sorted by cost, requests and tokens (descending, as the web app's /stats asks) over the year: the
  first, middle and last page, each reached with `page` and with the `cursor` of the page before it, p95
  (<= 100 ms);
- CSV exports of 100k and 1M rows: rows/s, and the usage process's peak resident memory (VmHWM) after each,
  which must stay flat rather than grow with the row count.

`--rows` scales the load down (the large workspace keeps 200 keys x 30 models over fewer days).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text

from bench.infra import bench_database
from owr_shared.db import create_engine, create_sessionmaker
from owr_usage.rollups.models import DailyUsage
from owr_usage.rollups.repository import RollupRepository
from tests.support.tokens import TestKeyring
from tools.devinfra import DATA_DIR, free_port
from tools.devstack import ProcessGroup, ProcessSpec, base_env

KEYS, MODELS, YEAR = 200, 30, 365
OTHER_KEYS, OTHER_MODELS = 20, 10
PROVIDERS = ("OpenAI", "Anthropic", "Google", "Azure", "Together")
COPY_CHUNK_ROWS = 50_000
# COPY writes every column of the table, in its order, so the load never drifts from the model.
COLUMNS = tuple(column.name for column in DailyUsage.__table__.columns)


# --- a JWKS and access tokens, as auth would mint them (the tests' keyring) ---------------------------


def bench_token(keyring: TestKeyring, workspace_id: str) -> str:
    """A user's access token for the workspace, valid for the longest lifetime usage accepts (15 min)."""
    return keyring.access_token(str(uuid.uuid4()), workspace_id, exp=int(time.time()) + 900)


@contextmanager
def jwks_server(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()


# --- the data ---------------------------------------------------------------------------------------------


class Workspace:
    def __init__(self, keys: int, models: int, days: int, *, linked: bool = True) -> None:
        self.id = str(uuid.uuid4())
        self.keys = [str(uuid.uuid4()) for _ in range(keys)]
        self.models = [f"vendor-{m % 7}/model-{m:02d}" for m in range(models)]
        self.days = days
        self.linked = linked

    @property
    def rows(self) -> int:
        return len(self.keys) * (len(self.models) if self.linked else 1) * self.days


def _suffixes(rng: random.Random, provisional: bool) -> list[str]:
    """Pre-formatted money and count columns: exact decimals with up to 10 places, like OpenRouter's."""
    flag = "t" if provisional else "f"
    out = []
    for _ in range(4096):
        cost = f"{rng.randrange(0, 10**8) / 10**10:.10f}"
        requests = rng.randrange(1, 500)
        out.append(
            f"{cost}\t{cost[:-1]}0\t{requests}\t{requests * rng.randrange(50, 900)}\t"
            f"{requests * rng.randrange(10, 300)}\t{requests * rng.randrange(0, 50)}\t{flag}\n"
        )
    return out


def generate(workspaces: list[Workspace], today: dt.date) -> Iterator[bytes]:
    """COPY text rows in primary-key order per workspace, in chunks."""
    rng = random.Random(5)
    final, provisional = _suffixes(rng, False), _suffixes(rng, True)
    unlinked_final = [
        s.split("\t", 2)[0] + "\t" + s.split("\t", 2)[1] + "\t\\N\t\\N\t\\N\t\\N\tf\n" for s in final[:64]
    ]
    unlinked_today = [s.replace("\tf\n", "\tt\n") for s in unlinked_final]
    chunk: list[str] = []
    n = 0
    for ws in workspaces:
        first = today - dt.timedelta(days=ws.days - 1)
        key_parts = [f"{k}\t" for k in ws.keys]
        if ws.linked:
            model_parts = [f"{m}\t{PROVIDERS[i % len(PROVIDERS)]}\t" for i, m in enumerate(ws.models)]
        else:
            model_parts = ["\t\t"]
        for d in range(ws.days):
            day = first + dt.timedelta(days=d)
            prefix = f"{ws.id}\t{day.isoformat()}\t"
            pool = (
                (provisional if day == today else final)
                if ws.linked
                else (unlinked_today if day == today else unlinked_final)
            )
            size = len(pool)
            for key in key_parts:
                head = prefix + key
                for model in model_parts:
                    chunk.append(head + model + pool[n % size])
                    n += 1
                if len(chunk) >= COPY_CHUNK_ROWS:
                    yield "".join(chunk).encode()
                    chunk = []
    if chunk:
        yield "".join(chunk).encode()


async def load(database_url: str, workspaces: list[Workspace], today: dt.date) -> float:
    """COPY every row into usage.daily_usage; returns rows/s."""
    conn = await asyncpg.connect(database_url)
    try:
        start = time.perf_counter()

        async def source() -> AsyncIterator[bytes]:
            for chunk in generate(workspaces, today):
                yield chunk

        await conn.copy_to_table("daily_usage", schema_name="usage", source=source(), columns=COLUMNS, format="text")
        elapsed = time.perf_counter() - start
        # What the service needs besides the rows: each key's state (a key filter must name a known key) and
        # its link (labels in the summary).
        now = dt.datetime.now(dt.UTC)
        states = [(uuid.UUID(k), uuid.UUID(ws.id), now) for ws in workspaces for k in ws.keys]
        await conn.copy_records_to_table(
            "key_states", schema_name="usage", records=states, columns=("key_id", "workspace_id", "latest_observed_at")
        )
        links = [
            (
                uuid.UUID(k),
                uuid.UUID(ws.id),
                f"sk-or-v1-{n:03x}...bch",
                False,
                uuid.UUID(int=1) if ws.linked else None,
                f"{n:064x}" if ws.linked else None,
            )
            for ws in workspaces
            for n, k in enumerate(ws.keys)
        ]
        await conn.copy_records_to_table(
            "key_links",
            schema_name="usage",
            records=links,
            columns=("key_id", "workspace_id", "label", "is_management_key", "management_key_id", "api_key_hash"),
        )
        total = sum(ws.rows for ws in workspaces)
        return total / elapsed
    finally:
        await conn.close()


async def build_rollups(database_url: str) -> float:
    engine = create_engine(database_url, pool_size=1, application_name="bench")
    try:
        start = time.perf_counter()
        async with create_sessionmaker(engine)() as session:
            await session.execute(text("SET LOCAL work_mem = '256MB'"))
            await RollupRepository(session).build_from_rows()
            await session.commit()
        elapsed = time.perf_counter() - start
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "VACUUM (ANALYZE) usage.daily_usage, usage.daily_key_totals, usage.daily_model_totals, "
            "usage.key_states, usage.key_links"
        )
    finally:
        await conn.close()
    return elapsed


# --- measuring through HTTP --------------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(client: httpx.AsyncClient, url: str, params: dict[str, Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        r = await client.get(url, params=params)
        out.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
    return out


async def export_rows(client: httpx.AsyncClient, params: dict[str, Any]) -> tuple[int, float]:
    lines = 0
    start = time.perf_counter()
    async with client.stream("GET", "/api/v1/usage/export", params=params) as r:
        r.raise_for_status()
        async for chunk in r.aiter_bytes():
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    return lines - 1, elapsed  # the header


SORTED_BY = ("-cost", "-requests", "-tokens")
PER_PAGE = 50


async def sorted_pages(client: httpx.AsyncClient, year: dict[str, Any], repeat: int) -> dict[str, float | None]:
    """p95 of the first, middle and last page of each sort, reached by `page` and by the cursor of the page
    before it (None: the service refuses that sort, or has no cursors)."""
    out: dict[str, float | None] = {}
    for sort in SORTED_BY:
        probe = await client.get("/api/v1/usage/daily", params={**year, "sort": sort, "per_page": PER_PAGE})
        if probe.status_code != 200:
            for position in ("first", "middle", "last"):
                out[f"{sort} {position} page"] = out[f"{sort} {position} cursor"] = None
            continue
        last = max(1, -(-probe.json()["total"] // PER_PAGE))
        for position, number in (("first", 1), ("middle", max(1, last // 2)), ("last", last)):
            by_page = {**year, "sort": sort, "per_page": PER_PAGE, "page": number}
            await timed(client, "/api/v1/usage/daily", by_page, 1)
            out[f"{sort} {position} page"] = round(
                percentile(await timed(client, "/api/v1/usage/daily", by_page, repeat), 95), 1
            )
            cursor: str | None = None
            if number > 1:
                before = await client.get("/api/v1/usage/daily", params={**by_page, "page": number - 1})
                cursor = before.json().get("next_cursor")
                if cursor is None:
                    out[f"{sort} {position} cursor"] = None
                    continue
            by_cursor = {**year, "sort": sort, "per_page": PER_PAGE, **({"cursor": cursor} if cursor else {})}
            out[f"{sort} {position} cursor"] = round(
                percentile(await timed(client, "/api/v1/usage/daily", by_cursor, repeat), 95), 1
            )
    return out


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a (not served)"
    return "met" if value <= target else "MISSED"


async def measure(base: str, token: str, big: Workspace, today: dt.date, pid: int, repeat: int) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}
    year = {"from": (today - dt.timedelta(days=big.days - 1)).isoformat(), "to": today.isoformat()}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        await timed(client, "/api/v1/usage/summary", year, 5)  # warm caches and the token cache
        summary = await timed(client, "/api/v1/usage/summary", year, repeat)
        results["summary_p50_ms"], results["summary_p95_ms"] = percentile(summary, 50), percentile(summary, 95)
        body = (await client.get("/api/v1/usage/summary", params=year)).json()
        results["summary_rows"] = body["totals"]["rows"]

        rng = random.Random(7)
        pages: dict[str, list[float]] = {}
        variants: dict[str, Callable[[], dict[str, Any]]] = {
            "first page": lambda: {**year},
            "pages 1-20": lambda: {**year, "page": rng.randint(1, 20)},
            "newest first": lambda: {**year, "sort": "-date", "page": rng.randint(1, 20)},
            "page 1000": lambda: {**year, "page": 1000},
            "one key": lambda: {**year, "key_id": rng.choice(big.keys), "page": rng.randint(1, 5)},
            "one model": lambda: {**year, "model": rng.choice(big.models), "page": rng.randint(1, 5)},
            "key + model": lambda: {**year, "key_id": rng.choice(big.keys), "model": rng.choice(big.models)},
        }
        for name, make in variants.items():
            await timed(client, "/api/v1/usage/daily", make(), 3)
            times: list[float] = []
            for _ in range(repeat):
                times += await timed(client, "/api/v1/usage/daily", make(), 1)
            pages[name] = times
        results["daily_p95_ms"] = {name: round(percentile(t, 95), 2) for name, t in pages.items()}
        results["daily_p50_ms"] = {name: round(percentile(t, 50), 2) for name, t in pages.items()}
        results["sorted_p95_ms"] = await sorted_pages(client, year, max(5, repeat // 5))

        per_day = len(big.keys) * len(big.models)
        results["rss_before_exports_mib"] = round(peak_rss_mib(pid), 1)
        for label, rows in (("100k", 100_000), ("1M", 1_000_000)):
            days = max(1, min(big.days, rows // per_day))
            window = {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
            count, elapsed = await export_rows(client, {**window, "format": "csv"})
            results[f"export_{label}"] = {
                "rows": count,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(count / elapsed),
                "peak_rss_mib": round(peak_rss_mib(pid), 1),
            }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000, help="daily rows in all (default 10 million)")
    parser.add_argument("--repeat", type=int, default=100, help="timed requests per measurement")
    args = parser.parse_args()

    today = dt.datetime.now(dt.UTC).date()
    big_days = max(1, min(YEAR, args.rows // (KEYS * MODELS)))
    big = Workspace(KEYS, MODELS, big_days)
    workspaces = [big]
    remaining = args.rows - big.rows
    n = 0
    while remaining > 0:
        # Other tenants: 20 keys each, most linked (10 models), every fourth without a breakdown.
        linked = n % 4 != 3
        per_day = OTHER_KEYS * (OTHER_MODELS if linked else 1)
        ws = Workspace(OTHER_KEYS, OTHER_MODELS, max(1, min(YEAR, remaining // per_day)), linked=linked)
        workspaces.append(ws)
        remaining -= ws.rows
        n += 1
    total = sum(ws.rows for ws in workspaces)

    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)

        print(
            f"usage reads: {total:,} daily rows in {len(workspaces)} workspaces; "
            f"the large one {big.rows:,} ({KEYS} keys x {big_days} days x {MODELS} models)"
        )
        rate = asyncio.run(load(database_url, workspaces, today))
        print(f"  COPY load:                {rate:12,.0f} rows/s")
        seconds = asyncio.run(build_rollups(database_url))
        print(f"  rollups built in          {seconds:12.1f} s (one pass each, then VACUUM ANALYZE)")

        keyring = TestKeyring(service_audience="owr-usage", default_scopes=())
        jwks_url = stack.enter_context(jwks_server(json.dumps(keyring.jwks).encode()))
        port = free_port()
        env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
        env["LOG_LEVEL"] = "WARNING"
        group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
        stack.callback(group.stop)
        group.start(
            ProcessSpec(
                "usage",
                "owr_usage",
                port,
                {"USAGE_PORT": str(port), "USAGE_JWKS_URL": jwks_url, "USAGE_RETENTION_DAYS": "400"},
            )
        )
        group.wait_ready(timeout=60)
        pid = group.find("usage").popen.pid
        results = asyncio.run(
            measure(f"http://127.0.0.1:{port}", bench_token(keyring, big.id), big, today, pid, args.repeat)
        )

        print(
            f"  summary, {big_days} days:       p50 {results['summary_p50_ms']:6.1f} ms   "
            f"p95 {results['summary_p95_ms']:6.1f} ms   (target p95 <= 50 ms: "
            f"{verdict(results['summary_p95_ms'], 50)}; {results['summary_rows']:,} rows behind it)"
        )
        for name, p95 in results["daily_p95_ms"].items():
            print(
                f"  daily page, {name:14} p50 {results['daily_p50_ms'][name]:6.1f} ms   p95 {p95:6.1f} ms   "
                f"(target <= 20 ms: {verdict(p95, 20)})"
            )
        for name, p95 in results["sorted_p95_ms"].items():
            shown = "   n/a" if p95 is None else f"{p95:6.1f}"
            print(f"  sorted, {name:24} p95 {shown} ms   (target <= 100 ms: {verdict(p95, 100)})")
        print(f"  usage peak RSS before exports: {results['rss_before_exports_mib']} MiB")
        for label in ("100k", "1M"):
            e = results[f"export_{label}"]
            print(
                f"  CSV export {label:>4}: {e['rows']:>9,} rows in {e['seconds']:6.2f} s = {e['rows_per_s']:>8,} rows/s; "
                f"usage peak RSS {e['peak_rss_mib']} MiB"
            )
        print(json.dumps({"load_rows_per_s": round(rate), "rollup_build_s": round(seconds, 1), **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
