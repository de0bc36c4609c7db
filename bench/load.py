"""Load benchmark (issue 12): cheap authenticated reads, and the system under 100 and 1,000 connections.

The whole system runs as real processes (auth, keys, usage, worker, gateway, and the OpenRouter emulator
with the demo account, synced once), all on 127.0.0.1. Printed as ratios measured in this one run:

- `GET /api/v1/auth/me` and `GET /api/v1/keys` at 32 connections, each as a ratio to the same process's
  `/health/live` (target >= 0.33x), and their p99 (target <= 50 ms);
- the gateway's `/api/v1/auth/me` against the direct call: throughput at 32 connections (>= 0.8x) and the
  added p50/p99 at one connection (<= +1 ms, <= +3 ms);
- a mixed read workload through the gateway (me, keys, summary, daily, one key's usage, in turn) at 100
  and at 1,000 connections: throughput, p50/p95/p99, answers by class (503 sheds apart from other 5xx)
  and socket errors. Target at 1,000: no 5xx but counted 503 sheds, no socket error, throughput >= 90%
  of the 100-connection figure.

Load comes from `wrk` (`make bench` installs it); without it the ratio rounds use bench.gateway's aiohttp
generator and the mixed workload is skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.gateway import Result, bench_env, load
from bench.infra import bench_database
from tools.devinfra import DATA_DIR
from tools.devstack import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    Ports,
    ProcessGroup,
    emulator_api_url,
    emulator_spec,
    seed_demo_user,
    system_specs,
)

LUA_SCRIPT = Path(__file__).with_name("mixed.lua")
# wrk's own default (2 s) would count a slow answer as a socket error; 1,000 queued connections may be slower.
WRK_TIMEOUT = "10s"


@dataclass
class Mixed:
    connections: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ok: int
    shed: int
    server: int
    client: int
    socket_errors: int

    def line(self) -> str:
        return (
            f"  {self.connections:5d} conns {self.rps:7.0f} req/s  p50 {self.p50_ms:7.1f}  p95 {self.p95_ms:7.1f}"
            f"  p99 {self.p99_ms:7.1f} ms | 2xx {self.ok}, 503 {self.shed}, other 5xx {self.server},"
            f" 4xx {self.client}, socket errors {self.socket_errors}"
        )


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to its hard limit; the servers and wrk started from it inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_mixed(base: str, token: str, paths: list[str], seconds: int, connections: int) -> Mixed:
    threads = min(4, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}"]
    out = subprocess.run(
        [*command, "-s", str(LUA_SCRIPT), base, "--", token, *paths],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"^OWR-RESULT (\{.*\})$", out, re.M)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(found.group(1))
    return Mixed(
        connections=connections,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p95_ms=r["p95_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        ok=r["ok"],
        shed=r["shed"],
        server=r["server"],
        client=r["client"],
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
    )


def demo_system(stack: ExitStack) -> Ports:
    """Every process and the emulator with its demo account, as `make demo` runs them, on a database of the
    benchmark's own; all stopped when `stack` closes. Their ports."""
    database_url, redis_url = bench_database(stack)
    ports = Ports.free()
    group = ProcessGroup(bench_env(database_url, redis_url), log_dir=Path(DATA_DIR / "bench" / "logs"))
    stack.callback(group.stop)
    group.start(emulator_spec(ports, seed="demo"))
    for spec in system_specs(ports, openrouter_url=emulator_api_url(ports)):
        group.start(spec)
    group.wait_ready(timeout=90)
    return ports


def demo_session(ports: Ports, timeout: float = 90.0) -> tuple[str, list[str]]:
    """Seed the demo account, sign in, and wait until usage answers for one synced key: the token and the
    mixed workload's paths."""
    key_ids = seed_demo_user(ports)
    gateway = f"http://127.0.0.1:{ports.gateway}"
    with httpx.Client(base_url=gateway, timeout=10) as client:
        response = client.post("/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        response.raise_for_status()
        token = str(response.json()["access_token"])
        headers = {"authorization": f"Bearer {token}"}
        deadline = time.monotonic() + timeout
        while True:
            for key_id in key_ids:
                if client.get(f"/api/v1/usage/keys/{key_id}", headers=headers).status_code == 200:
                    paths = [
                        "/api/v1/auth/me",
                        "/api/v1/keys",
                        "/api/v1/usage/summary",
                        "/api/v1/usage/daily",
                        f"/api/v1/usage/keys/{key_id}",
                    ]
                    return token, paths
            if time.monotonic() > deadline:
                raise TimeoutError("no demo key was synced into usage in time")
            time.sleep(0.5)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="duration of each mixed-workload run")
    parser.add_argument("--ratio-seconds", type=int, default=5, help="duration of each ratio round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per ratio target")
    parser.add_argument(
        "--connections", type=int, nargs="*", default=[100, 1000], help="mixed-workload runs (none: skip)"
    )
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    has_wrk = shutil.which("wrk") is not None

    with ExitStack() as stack:
        ports = demo_system(stack)
        token, paths = demo_session(ports)

        auth, keys = f"http://127.0.0.1:{ports.auth}", f"http://127.0.0.1:{ports.keys}"
        gateway = f"http://127.0.0.1:{ports.gateway}"
        c, s = 32, args.ratio_seconds
        targets = {
            "auth /health/live": (f"{auth}/health/live", c),
            "auth /api/v1/auth/me": (f"{auth}/api/v1/auth/me", c),
            "keys /health/live": (f"{keys}/health/live", c),
            "keys /api/v1/keys": (f"{keys}/api/v1/keys", c),
            "gateway /api/v1/auth/me": (f"{gateway}/api/v1/auth/me", c),
            "auth /api/v1/auth/me @1": (f"{auth}/api/v1/auth/me", 1),
            "gateway /api/v1/auth/me @1": (f"{gateway}/api/v1/auth/me", 1),
        }
        tool = "wrk" if has_wrk else "aiohttp (wrk not installed)"
        print(f"load benchmark: {args.rounds} alternating rounds x {s}s per ratio target, load: {tool}")
        for url, connections in targets.values():  # warm pools and caches alike
            load(url, token, 1, connections)
        results: dict[str, list[Result]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, connections) in targets.items():
                results[name].append(load(url, token, s, connections))

        def median(name: str, attr: str) -> float:
            return float(statistics.median(float(getattr(r, attr)) for r in results[name]))

        for name, (_, connections) in targets.items():
            print(
                f"  {name:28s} {median(name, 'rps'):7.0f} req/s at {connections:2d} conns"
                f"  p50 {median(name, 'p50_ms'):6.2f} ms  p99 {median(name, 'p99_ms'):6.2f} ms"
            )
        print("targets:")
        for service, read in (("auth", "auth /api/v1/auth/me"), ("keys", "keys /api/v1/keys")):
            ratio = median(read, "rps") / median(f"{service} /health/live", "rps")
            p99 = median(read, "p99_ms")
            print(f"  {read} / {service} /health/live: {ratio:.2f}x (>= 0.33x) {verdict(ratio >= 0.33)}")
            print(f"  {read} p99 at 32 conns: {p99:.1f} ms (<= 50 ms) {verdict(p99 <= 50)}")
        ratio = median("gateway /api/v1/auth/me", "rps") / median("auth /api/v1/auth/me", "rps")
        print(f"  gateway/direct auth/me at 32 conns: {ratio:.2f}x (>= 0.80x) {verdict(ratio >= 0.8)}")
        added_p50 = median("gateway /api/v1/auth/me @1", "p50_ms") - median("auth /api/v1/auth/me @1", "p50_ms")
        added_p99 = median("gateway /api/v1/auth/me @1", "p99_ms") - median("auth /api/v1/auth/me @1", "p99_ms")
        print(f"  gateway added p50 at 1 conn: {added_p50:+.2f} ms (<= +1 ms) {verdict(added_p50 <= 1)}")
        print(f"  gateway added p99 at 1 conn: {added_p99:+.2f} ms (<= +3 ms) {verdict(added_p99 <= 3)}")

        if not args.connections:
            return 0
        if not has_wrk:
            print("mixed workload skipped: it needs wrk (apt-get install wrk, or `make bench`)")
            return 0
        print(f"mixed reads through the gateway ({', '.join(paths)}), {args.seconds}s per run, fd limit {fd_limit}:")
        mixed = []
        for connections in args.connections:
            run_mixed(gateway, token, paths, 2, min(connections, 32))  # warm-up
            mixed.append(run_mixed(gateway, token, paths, args.seconds, connections))
            print(mixed[-1].line())
        if len(mixed) >= 2:
            low, high = mixed[0], mixed[-1]
            share = high.rps / low.rps if low.rps else 0.0
            print(f"  at {high.connections} conns: 5xx other than 503: {high.server} (0) {verdict(high.server == 0)}")
            print(
                f"  at {high.connections} conns: socket errors: {high.socket_errors} (0) {verdict(high.socket_errors == 0)}"
            )
            print(
                f"  at {high.connections} conns: throughput {share:.2f}x the {low.connections}-conn figure (>= 0.90x) {verdict(share >= 0.9)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
