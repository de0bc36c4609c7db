"""Row-level security's cost on reads: `GET /api/v1/keys` and `GET /api/v1/usage/summary` with the wall on
(`owr_shared.wall`: the transaction's settings and role in one statement at its start, then the policies)
against the same apps with it off, measured in one run and printed as ratios.

The apps run in-process (their lifespans included) behind an httpx client on a fresh migrated database, as
the tests run them; the bench connects as a superuser, so "off" is the app's sessionmaker swapped for an
unwalled one: no statement at the transaction's start and no policy applied (a superuser bypasses them).
A third variant keeps the statement but skips the role switch, separating the round trip from the policies.
Each round runs every variant once, leading in turn; each variant's figures are divided by the same round's
"off" ones and the median of those ratios is reported, so drift in the machine's load cancels out. Besides
requests/s, this process's CPU time per request (the app's and the client's, not PostgreSQL's) is shown: it
moves far less with other load on the machine. Nothing is asserted: a cost above 5 % of read throughput is
said, and the wall is kept anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from bench.infra import bench_database
from bench.usage import Workspace, build_rollups, load
from owr_keys.app import create_app as create_keys_app
from owr_keys.settings import KeysSettings
from owr_shared import wall
from owr_shared.db import create_sessionmaker
from owr_shared.logging import configure_logging
from owr_usage.app import create_app as create_usage_app
from owr_usage.settings import UsageSettings
from tests.support.settings import service_settings
from tests.support.tokens import TestKeyring

KEYS_PER_WORKSPACE, KEY_WORKSPACES = 50, 20
BUDGET = 0.05  # of read throughput


class SettingsOnly(Session):
    """The wall's settings at the transaction's start, without its role: a superuser still bypasses the
    policies, so what this costs over "off" is the round trip alone."""


@event.listens_for(SettingsOnly, "after_begin")
def _settings_only(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    cursor = connection.connection.cursor()  # as owr_shared.wall runs its statement
    try:
        sql = "SELECT set_config('owr.workspace_id', $1, true), set_config('owr.spans', '', true)"
        cursor.execute(sql, (str(wall.of(session).workspace_id or ""),))
    finally:
        cursor.close()


def variants(engine: AsyncEngine) -> dict[str, async_sessionmaker[Any]]:
    return {
        "on": create_sessionmaker(engine, walled=True),
        "off": create_sessionmaker(engine),
        "settings only": async_sessionmaker(
            engine, expire_on_commit=False, autoflush=False, sync_session_class=SettingsOnly
        ),
    }


@dataclass
class Sample:
    rps: float
    cpu_ms: float  # this process's CPU time per request: the app's and the client's, not PostgreSQL's


async def sample(client: httpx.AsyncClient, url: str, headers: dict[str, str], seconds: float, tasks: int) -> Sample:
    """Requests per second with `tasks` requests in flight, and this process's CPU per request."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            r = await client.get(url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} from {url}: {r.text[:200]}")
            done += 1

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return Sample(done / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / done)


Ratios = dict[str, Sample]


async def compare(
    app: FastAPI, url: str, headers: dict[str, str], *, rounds: int, seconds: float, tasks: int
) -> Ratios:
    """Every round runs each variant once, in turn leading: `"off"` is the round's figures, the others are
    their ratios to the same round's "off", so drift in the machine's load cancels out of the median."""
    makers = variants(app.state.engine)
    rounds_seen: list[dict[str, Sample]] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for maker in makers.values():  # warm up each (plans, prepared statements, pool)
            app.state.sessionmaker = maker
            await sample(client, url, headers, 0.5, tasks)
        order = list(makers)
        for n in range(rounds):
            seen = {}
            for name in order[n % len(order) :] + order[: n % len(order)]:
                app.state.sessionmaker = makers[name]
                seen[name] = await sample(client, url, headers, seconds, tasks)
            rounds_seen.append(seen)

    def median(name: str, relative: bool) -> Sample:
        base = [r["off"] if relative else Sample(1, 1) for r in rounds_seen]
        return Sample(
            statistics.median(r[name].rps / b.rps for r, b in zip(rounds_seen, base, strict=True)),
            statistics.median(r[name].cpu_ms / b.cpu_ms for r, b in zip(rounds_seen, base, strict=True)),
        )

    return {name: median(name, relative=name != "off") for name in makers}


async def keys_reads(database_url: str, redis_url: str, keyring: TestKeyring, measure: Measure) -> Ratios:
    kek = base64.b64encode(os.urandom(32)).decode()
    settings = service_settings(
        KeysSettings,
        database_url,
        redis_url,
        {
            "keks": json.dumps({"bench": kek}),
            "active_kek_version": "bench",
            "fingerprint_key": base64.b64encode(os.urandom(32)).decode(),
            "queue_name": f"arq:queue:bench-rls-{uuid.uuid4().hex[:8]}",
        },
        {},
    )
    app = create_keys_app(settings, jwks_fetcher=keyring.fetch)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://bench"))
        headers = {}
        for _ in range(KEY_WORKSPACES):
            token = keyring.access_token(str(uuid.uuid4()), str(uuid.uuid4()), exp=int(time.time()) + 900)
            headers = {"authorization": f"Bearer {token}"}
            for n in range(KEYS_PER_WORKSPACE):
                body = {"name": f"bench {n}", "key": "sk-or-v1-" + os.urandom(32).hex()}
                r = await client.post("/api/v1/keys", headers=headers, json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"storing a key: {r.status_code} {r.text[:200]}")
        await _analyze(app, "keys.openrouter_keys")
        return await measure(app, "/api/v1/keys", headers)


async def usage_reads(database_url: str, redis_url: str, keyring: TestKeyring, measure: Measure, days: int) -> Ratios:
    today = dt.datetime.now(dt.UTC).date()
    big = Workspace(20, 10, days)
    await load(database_url, [big, *(Workspace(20, 10, days) for _ in range(9))], today)
    await build_rollups(database_url)
    # One workspace reads with every task: its concurrency limit must not be what is measured.
    settings = service_settings(UsageSettings, database_url, redis_url, {"summary_concurrency_per_workspace": 1000}, {})
    app = create_usage_app(settings, jwks_fetcher=keyring.fetch)
    token = keyring.access_token(str(uuid.uuid4()), big.id, exp=int(time.time()) + 900)
    first = (today - dt.timedelta(days=days - 1)).isoformat()
    async with app.router.lifespan_context(app):
        url = f"/api/v1/usage/summary?from={first}&to={today.isoformat()}"
        return await measure(app, url, {"authorization": f"Bearer {token}"})


async def _analyze(app: FastAPI, table: str) -> None:
    async with app.state.engine.connect() as conn:
        await conn.execute(text(f"ANALYZE {table}"))


Measure = Callable[[FastAPI, str, dict[str, str]], Awaitable[Ratios]]


def report(name: str, figures: Ratios) -> dict[str, Any]:
    off, on, statement = figures["off"], figures["on"], figures["settings only"]
    cost = 1 - on.rps
    print(
        f"  {name:34} off {off.rps:6.0f} req/s, {off.cpu_ms:5.2f} ms CPU/req;  on {on.rps:.3f}x req/s = cost"
        f" {cost:5.1%}, CPU/req {on.cpu_ms - 1:+5.1%};  its statement alone {1 - statement.rps:5.1%},"
        f" CPU/req {statement.cpu_ms - 1:+5.1%}"
        + (f"\n  {'':34} ABOVE the {BUDGET:.0%} budget, kept anyway (docs/decisions.md)" if cost > BUDGET else "")
    )
    return {
        "off_rps": round(off.rps),
        "off_cpu_ms": round(off.cpu_ms, 3),
        "cost": round(cost, 4),
        "cpu_cost": round(on.cpu_ms - 1, 4),
        "statement_cost": round(1 - statement.rps, 4),
        "statement_cpu_cost": round(statement.cpu_ms - 1, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40, help="rounds of each variant (median reported)")
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one round")
    parser.add_argument("--tasks", type=int, default=8, help="requests in flight")
    parser.add_argument("--days", type=int, default=90, help="days of the summary's workspace (20 keys x 10 models)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")  # the apps' request lines would cost more than what is measured

    async def measure(app: FastAPI, url: str, headers: dict[str, str]) -> Ratios:
        return await compare(app, url, headers, rounds=args.rounds, seconds=args.seconds, tasks=args.tasks)

    keyring_keys = TestKeyring(service_audience="owr-keys", default_scopes=())
    keyring_usage = TestKeyring(service_audience="owr-usage", default_scopes=())
    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)
        print(
            f"row-level security on reads, in-process, {args.tasks} requests in flight, "
            f"{args.rounds} rounds of {args.seconds:g} s per variant, medians of each round's ratio to off:"
        )
        keys = asyncio.run(keys_reads(database_url, redis_url, keyring_keys, measure))
        keys_result = report(f"GET /api/v1/keys ({KEYS_PER_WORKSPACE} of {KEY_WORKSPACES * KEYS_PER_WORKSPACE})", keys)
        usage = asyncio.run(usage_reads(database_url, redis_url, keyring_usage, measure, args.days))
        usage_result = report(f"GET /api/v1/usage/summary ({args.days} d)", usage)
        print(json.dumps({"keys_list": keys_result, "usage_summary": usage_result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
