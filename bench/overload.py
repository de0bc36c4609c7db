"""Overload, measured (issue 12, items 1 and 2): the usage service as a real process on real PostgreSQL.

- **summary at 4x pool-size concurrency** (target: 0 errors, no request slower than 2 s): closed-loop
  clients, `4 x DB_POOL_SIZE` of them, spread over workspaces within each one's share, for `--seconds`;
- **one greedy workspace**: the same number of clients in one workspace beside one polite client in
  another: the greedy one's excess is refused at once (429), the polite one is still served;
- **concurrent exports**: two per workspace at once, more than the export pool holds: they wait for a
  slot (up to the pool timeout), then are refused with a 503.

Status counts, client timeouts, p50/p99/max and the process's `owr_requests_shed_total` are printed. The
file imports nothing the branch adds, so the same run works on main's code (the "before" figures).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.infra import bench_database
from bench.usage import Workspace, bench_token, build_rollups, jwks_server, load, percentile
from tests.support.tokens import TestKeyring
from tools.devinfra import DATA_DIR, free_port
from tools.devstack import ProcessGroup, ProcessSpec, base_env

SUMMARY = "/api/v1/usage/summary"
EXPORT = "/api/v1/usage/export"
# Longer than the old 30 s pool timeout, so a request queued behind a deadlock is seen ending, not cut off.
CLIENT_TIMEOUT = 40.0


@dataclass
class Run:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, status: str, elapsed: float) -> None:
        self.statuses[status] += 1
        self.latencies_ms.append(elapsed * 1000)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in ("200",))

    def line(self) -> str:
        if not self.latencies_ms:
            return "no request completed"
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return f"{len(self.latencies_ms)} requests ({counts}); p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(self.latencies_ms):.0f} ms"


async def one(client: httpx.AsyncClient, url: str, token: str, params: dict[str, Any], run: Run) -> None:
    start = time.perf_counter()
    try:
        r = await client.get(url, params=params, headers={"authorization": f"Bearer {token}"})
        await r.aread()
        status = str(r.status_code)
    except httpx.TimeoutException:
        status = "timeout"
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    run.add(status, time.perf_counter() - start)


async def closed_loop(
    client: httpx.AsyncClient, url: str, tokens: list[str], params: dict[str, Any], seconds: float
) -> Run:
    """One client per token, each sending its next request when the last one ended, for `seconds`."""
    run = Run()
    deadline = time.monotonic() + seconds

    async def worker(token: str) -> None:
        while time.monotonic() < deadline:
            await one(client, url, token, params, run)

    await asyncio.gather(*(worker(t) for t in tokens))
    return run


async def shed_counts(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("owr_requests_shed_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('reason="', 1)[1].split('"', 1)[0]] = float(value)
    return out


async def measure(
    base: str, keyring: TestKeyring, workspaces: list[Workspace], pool: int, seconds: float
) -> dict[str, Any]:
    clients = 4 * pool
    span = {"from": (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=29)).isoformat()}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as client:
        tokens = [bench_token(keyring, workspaces[i % len(workspaces)].id) for i in range(clients)]
        await one(client, SUMMARY, tokens[0], span, Run())  # warm the JWKS and the plans
        alone = Run()
        for _ in range(20):
            await one(client, SUMMARY, tokens[0], span, alone)
        spread = await closed_loop(client, SUMMARY, tokens, span, seconds)

        greedy_token, polite_token = bench_token(keyring, workspaces[0].id), bench_token(keyring, workspaces[1].id)
        greedy, polite = await asyncio.gather(
            closed_loop(client, SUMMARY, [greedy_token] * clients, span, seconds),
            closed_loop(client, SUMMARY, [polite_token], span, seconds),
        )

        exports = Run()
        await asyncio.gather(
            *(one(client, EXPORT, token, span, exports) for token in tokens[: 2 * len(workspaces)]),
        )
        shed = await shed_counts(client)
    return {
        "clients": clients,
        "alone": alone,
        "spread": spread,
        "greedy": greedy,
        "polite": polite,
        "exports": exports,
        "shed": shed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each closed-loop run")
    parser.add_argument("--pool", type=int, default=10, help="DB_POOL_SIZE of the usage process")
    parser.add_argument("--workspaces", type=int, default=10, help="workspaces the clients are spread over")
    args = parser.parse_args()

    today = dt.datetime.now(dt.UTC).date()
    # A month of 20 keys x 10 models per workspace: 6,000 daily rows each.
    workspaces = [Workspace(20, 10, 30) for _ in range(max(2, args.workspaces))]
    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)
        asyncio.run(load(database_url, workspaces, today))
        asyncio.run(build_rollups(database_url))

        keyring = TestKeyring(service_audience="owr-usage", default_scopes=())
        jwks_url = stack.enter_context(jwks_server(json.dumps(keyring.jwks).encode()))
        port = free_port()
        env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
        env["LOG_LEVEL"] = "ERROR"
        env["DB_POOL_SIZE"] = str(args.pool)
        group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
        stack.callback(group.stop)
        group.start(ProcessSpec("usage", "owr_usage", port, {"USAGE_PORT": str(port), "USAGE_JWKS_URL": jwks_url}))
        group.wait_ready(timeout=60)
        r = asyncio.run(measure(f"http://127.0.0.1:{port}", keyring, workspaces, args.pool, args.seconds))

    spread: Run = r["spread"]
    slowest = max(spread.latencies_ms, default=float("inf"))
    met = spread.errors == 0 and slowest <= 2000 and bool(spread.latencies_ms)
    n = r["clients"]
    print(
        f"overload: usage with DB_POOL_SIZE={args.pool} (+{args.pool} overflow), {len(workspaces)} workspaces x 6,000 rows"
    )
    print(f"  machine load average (1 min) after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  summary, one client alone: {r['alone'].line()}")
    print(f"  summary, {n} clients over {len(workspaces)} workspaces, {args.seconds:.0f} s: {spread.line()}")
    print(
        f"    target (summary at 4x pool-size concurrency: 0 errors, no request slower than 2 s): "
        f"{'met' if met else 'MISSED'} ({spread.errors} errors, slowest {slowest:.0f} ms)"
    )
    print(f"  summary, {n} clients in one workspace: {r['greedy'].line()}")
    print(f"  summary, 1 client in another workspace meanwhile: {r['polite'].line()}")
    print(
        f"  export, {len(r['exports'].latencies_ms)} at once, 2 per workspace (30 days, 6,000 rows each): {r['exports'].line()}"
    )
    print(f"  owr_requests_shed_total by reason: {r['shed'] or 'none exported'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
