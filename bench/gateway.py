"""Gateway benchmark: `GET /api/v1/auth/me` through the gateway (JWT check, rate limit, proxy) against the
same request sent straight to auth, and through the gateway with a personal API token (its cached
introspection read in the rate limiter's round trip), measured in one run and printed as ratios.

Targets: gateway throughput >= 0.8x direct, added p99 <= 3 ms (issue 2); API-token path >= 0.8x the JWT
path (issue 6). Throughput is measured at saturation
(32 connections); latency at one connection, where queueing does not hide the hop's own cost. Load comes from
`wrk` when it is
installed (`apt-get install wrk`), else from a built-in aiohttp load generator (which competes for the
same cores, so its figures are lower and noisier). Rounds alternate direct and gateway so drift in the
machine's state affects both alike; the median round of each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.infra import bench_database
from tools.devinfra import DATA_DIR
from tools.devstack import Ports, ProcessGroup, base_env, system_specs

PASSWORD = "benchmark passphrase, long enough"  # noqa: S105 - a throwaway bench user


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


def _to_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, token: str, seconds: int, connections: int) -> Result:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    p50 = _to_ms(*re.match(r"([\d.]+)(\w+)", lat["50"]).groups())  # type: ignore[union-attr]
    p99 = _to_ms(*re.match(r"([\d.]+)(\w+)", lat["99"]).groups())  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} non-2xx responses from {url}: the benchmark would be meaningless")
    return Result(rps, p50, p99)


async def _aiohttp_load(url: str, token: str, seconds: int, connections: int) -> Result:
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status} from {url}")
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


def load(url: str, token: str, seconds: int, connections: int) -> Result:
    if shutil.which("wrk"):
        return run_wrk(url, token, seconds, connections)
    return asyncio.run(_aiohttp_load(url, token, seconds, connections))


def bench_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The processes' environment, with rate limits out of reach: a benchmark measures the limiter's cost,
    not its refusals."""
    env = base_env(database_url, redis_url, "development", DATA_DIR / "bench" / "secrets")
    env["GATEWAY_RATE_LIMITS"] = (
        '{"anonymous": {"limit": 1000000000, "window": 60}, "login": {"limit": 1000, "window": 60},'
        ' "user": {"limit": 1000000000, "window": 60}, "token": {"limit": 1000000000, "window": 60}}'
    )
    return env


def login(gateway: str) -> tuple[str, str]:
    """A new user's access JWT, and an API token of theirs (the token policy is set out of reach below)."""
    email = f"bench.{secrets.token_hex(4)}@example.com"
    with httpx.Client(base_url=gateway, timeout=10) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        response = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        access = str(response.json()["access_token"])
        created = client.post(
            "/api/v1/tokens",
            headers={"authorization": f"Bearer {access}"},
            json={"name": "bench"},
        )
        created.raise_for_status()
        return access, str(created.json()["token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measured round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target, alternating")
    parser.add_argument("--connections", type=int, default=32, help="connections for the throughput rounds")
    parser.add_argument("--latency-connections", type=int, default=1, help="connections for the latency rounds")
    args = parser.parse_args()

    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)

        env = bench_env(database_url, redis_url)
        ports = Ports.free()
        group = ProcessGroup(env, log_dir=Path(DATA_DIR / "bench" / "logs"))
        stack.callback(group.stop)
        for spec in system_specs(ports):
            if spec.name in ("auth", "gateway"):
                group.start(spec)
        group.wait_ready(timeout=60)

        gateway = f"http://127.0.0.1:{ports.gateway}"
        access, api_token = login(gateway)
        targets = {
            "direct": (f"http://127.0.0.1:{ports.auth}/api/v1/auth/me", access),
            "gateway": (f"{gateway}/api/v1/auth/me", access),
            "token": (f"{gateway}/api/v1/auth/me", api_token),
        }
        tool = "wrk" if shutil.which("wrk") else "aiohttp (wrk not installed)"
        print(f"GET /api/v1/auth/me, {args.rounds} rounds x {args.seconds}s per target and mode, load: {tool}")
        print("  targets: direct (auth, JWT), gateway (JWT), token (gateway, owr_ API token)")
        for url, token in targets.values():  # warm caches, pools and JIT-less interpreters alike
            load(url, token, 2, args.connections)
        throughput: dict[str, list[Result]] = {name: [] for name in targets}
        latency: dict[str, list[Result]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, token) in targets.items():
                throughput[name].append(load(url, token, args.seconds, args.connections))
                latency[name].append(load(url, token, args.seconds, args.latency_connections))

    def median(results: dict[str, list[Result]], name: str, attr: str) -> float:
        return float(statistics.median(float(getattr(r, attr)) for r in results[name]))

    for name in targets:
        print(
            f"  {name:8s} {median(throughput, name, 'rps'):7.0f} req/s at {args.connections} conns"
            f"  | at {args.latency_connections} conn: p50 {median(latency, name, 'p50_ms'):6.2f} ms"
            f"  p99 {median(latency, name, 'p99_ms'):6.2f} ms"
        )
    ratio = median(throughput, "gateway", "rps") / median(throughput, "direct", "rps")
    added_p99 = median(latency, "gateway", "p99_ms") - median(latency, "direct", "p99_ms")
    added_p50 = median(latency, "gateway", "p50_ms") - median(latency, "direct", "p50_ms")
    print(f"  throughput ratio gateway/direct: {ratio:.2f}x   (target >= 0.80x)")
    token_ratio = median(throughput, "token", "rps") / median(throughput, "gateway", "rps")
    print(
        f"  throughput ratio API token/JWT:  {token_ratio:.2f}x   (target >= 0.80x; token/direct {token_ratio * ratio:.2f}x)"
    )
    print(f"  added latency: p50 {added_p50:+.2f} ms, p99 {added_p99:+.2f} ms   (target p99 <= +3 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
