"""Where an authenticated read's time goes: `GET /api/v1/auth/me`, `GET /api/v1/keys` and
`GET /api/v1/usage/daily`, each served by its app in this process (lifespan included, JSON logging as
deployed, real PostgreSQL and Redis), called one after another through httpx's ASGI transport, and
profiled with cProfile on CPU time (so other load on the machine does not blur it).

Prints, per path, the CPU time per request, the `--top` functions by own CPU time, and the cumulative CPU
time of the suspects (JWT verification, the transaction boundary, the middleware, logging, the ORM). The
client's own frames (httpx) are not the app's cost. A developer tool (issue 12, item 3), not in `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import secrets
import sys
import time
from contextlib import AsyncExitStack, ExitStack, redirect_stdout
from typing import Any, TextIO

import httpx

from bench.gateway import PASSWORD, bench_env
from bench.infra import bench_database
from owr_auth.app import create_app as auth_app
from owr_auth.settings import AuthSettings
from owr_keys.app import create_app as keys_app
from owr_keys.settings import KeysSettings
from owr_shared.logging import configure_logging
from owr_shared.settings import load_settings
from owr_usage.app import create_app as usage_app
from owr_usage.settings import UsageSettings
from tests.support.apps import running

DEMO_KEY = "sk-or-v1-" + "0123456789abcdef" * 4


async def profile(requests: int, top: int, log_sink: TextIO, callers: str | None) -> None:
    configure_logging("profile", json=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's own log line is not the app's cost
    async with AsyncExitStack() as stack:
        auth = await stack.enter_async_context(running(auth_app(load_settings(AuthSettings))))

        async def jwks() -> dict[str, Any]:
            data: dict[str, Any] = (await auth.get("/.well-known/jwks.json")).raise_for_status().json()
            return data

        keys = await stack.enter_async_context(running(keys_app(load_settings(KeysSettings), jwks_fetcher=jwks)))
        usage = await stack.enter_async_context(running(usage_app(load_settings(UsageSettings), jwks_fetcher=jwks)))

        email = f"profile.{secrets.token_hex(4)}@example.com"
        (await auth.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})).raise_for_status()
        login = (await auth.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).raise_for_status()
        headers = {"authorization": f"Bearer {login.json()['access_token']}"}
        for n in range(3):
            body = {"name": f"profile {n}", "key": DEMO_KEY[:-1] + str(n)}
            (await keys.post("/api/v1/keys", headers=headers, json=body)).raise_for_status()

        targets: dict[str, httpx.AsyncClient] = {
            "/api/v1/auth/me": auth,
            "/api/v1/keys": keys,
            "/api/v1/usage/daily": usage,
        }
        # The floor: the same client and process answering the cheapest route.
        floor = await cpu_per_request(auth, "/health/live", headers, requests, log_sink)
        print(f"GET /health/live (auth), unprofiled: {floor:.0f} us CPU per request")
        for path, client in targets.items():
            plain = await cpu_per_request(client, path, headers, requests, log_sink)
            print(f"GET {path}, unprofiled: {plain:.0f} us CPU per request ({plain - floor:+.0f} us over the floor)")
            if top <= 0 and not callers:
                continue
            profiler = cProfile.Profile(time.process_time)
            started = time.process_time()
            with redirect_stdout(log_sink):
                profiler.enable()
                for _ in range(requests):
                    (await client.get(path, headers=headers)).raise_for_status()
                profiler.disable()
            cpu = time.process_time() - started
            print(f"== GET {path}: {cpu / requests * 1e6:.0f} us CPU per request over {requests} requests")
            report(profiler, requests, top, callers)


async def cpu_per_request(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], requests: int, log_sink: TextIO
) -> float:
    """Microseconds of this process's CPU per request (client included), after a warm-up."""
    with redirect_stdout(log_sink):
        for _ in range(50):  # warm pools, caches and prepared statements
            (await client.get(path, headers=headers)).raise_for_status()
        started = time.process_time()
        for _ in range(requests):
            (await client.get(path, headers=headers)).raise_for_status()
    return (time.process_time() - started) / requests * 1e6


# Cumulative CPU of the usual suspects, by function name (file:function as pstats names them).
SUSPECTS = {
    "ASGI app (everything below the client)": ("fastapi/applications.py", "__call__"),
    "request middleware": ("owr_shared/middleware.py", "__call__"),
    "request log line": ("structlog/_native.py", "meth"),
    "HTTP metrics": ("prometheus_client/metrics.py", "labels"),
    "JWT verification": ("owr_shared/jwt.py", "verify"),
    "dependencies (solve)": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "session commit": ("sqlalchemy/ext/asyncio/session.py", "commit"),
    "ORM execute": ("sqlalchemy/ext/asyncio/session.py", "execute"),
    "ORM get": ("sqlalchemy/ext/asyncio/session.py", "get"),
    "response validation/serialisation": ("fastapi/routing.py", "serialize_response"),
    "json_response": ("owr_shared/schemas.py", "json_response"),
}


def report(profiler: cProfile.Profile, requests: int, top: int, callers: str | None) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    if callers:
        stats.print_callers(callers)
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    # cProfile counts each resumption of a coroutine as a call: read the cumulative figures as upper bounds.
    print("  suspects, cumulative CPU per request (coroutines: an upper bound):")
    for label, (file, function) in SUSPECTS.items():
        total = sum(v[3] for (f, _, fn), v in raw.items() if f.endswith(file) and fn == function)
        print(f"    {label:40s} {total / requests * 1e6:7.0f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--top", type=int, default=25, help="functions to list by own CPU time (0: only the unprofiled figures)"
    )
    parser.add_argument("--callers", help="also list the callers of functions matching this pstats pattern")
    args = parser.parse_args()
    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)
        os.environ.update(bench_env(database_url, redis_url))
        log_sink = stack.enter_context(open(os.devnull, "w"))  # the request log lines, rendered as deployed
        asyncio.run(profile(args.requests, args.top, log_sink, args.callers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
