"""Web dashboard benchmark (issue 14): how fast its pages are, how much they send, how many API calls each makes.

The whole system runs as real processes (as `make demo`: the emulator's demo account, the demo user signed in
through web's own login form). Printed, measured in this one run:

- server time of the HTML of `/` (dashboard) and `/keys`, p50 and p95 over sequential requests straight to
  web (target: p95 <= 150 ms on this machine), and through the gateway;
- the API calls each page makes (web's `owr_web_api_calls_total`, read from its admin port before and after
  one request; target: at most one per widget, never one per key);
- the bytes of JS and CSS a first visit downloads, gzip (target <= 150 KB);
- the cost of the live updates: one poll of the keys table (server time and API calls) and what that
  is per minute at the default `WEB_LIVE_POLL_SECONDS`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.load import demo_session, demo_system
from tools.devstack import DEMO_EMAIL, DEMO_PASSWORD

MANIFEST = (
    Path(__file__).resolve().parents[1] / "services" / "web" / "src" / "owr_web" / "static" / "dist" / "manifest.json"
)
API_CALLS = re.compile(r'^owr_web_api_calls_total\{outcome="(\w+)"\} ([0-9.e+]+)$', re.M)
POLL_SECONDS = 5


def signed_in(client: httpx.Client) -> None:
    """Sign in as the demo user through web's own form (its CSRF cookie and field included)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF field on /login"
    answer = client.post(
        "/login", data={"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "next": "/", "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, answer.text


def api_calls(admin: str) -> float:
    text = httpx.get(admin + "/metrics", timeout=10).text
    return sum(float(value) for _, value in API_CALLS.findall(text))


def timed(client: httpx.Client, path: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def assets_gzip() -> dict[str, int]:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    dist = MANIFEST.parent
    return {name: len(gzip.compress((dist / file).read_bytes(), 9)) for name, file in manifest.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60, help="sequential requests per page")
    args = parser.parse_args()
    with ExitStack() as stack:
        ports = demo_system(stack)
        demo_session(ports)  # the demo keys are stored and synced into usage
        web_direct = f"http://127.0.0.1:{ports.web}"
        web_admin = f"http://127.0.0.1:{ports.web_admin}"
        gateway = f"http://127.0.0.1:{ports.gateway}"
        print(f"web benchmark: {args.rounds} sequential requests per page, the demo account (4 keys)")
        with httpx.Client(base_url=gateway, timeout=30) as through_gateway:
            signed_in(through_gateway)
            cookies = through_gateway.cookies
            with httpx.Client(base_url=web_direct, timeout=30, cookies=cookies) as direct:
                for path in ("/", "/keys", "/keys/table"):
                    timed(direct, path, 3)  # warm
                    before = api_calls(web_admin)
                    direct.get(path)
                    calls = api_calls(web_admin) - before
                    server = timed(direct, path, args.rounds)
                    total = timed(through_gateway, path, args.rounds)
                    p95 = percentile(server, 0.95)
                    verdict = "met" if p95 <= 150 else "MISSED"
                    print(
                        f"  {path:12s} server p50 {statistics.median(server):6.1f} ms  p95 {p95:6.1f} ms (<= 150 ms {verdict})"
                        f"  via gateway p50 {statistics.median(total):6.1f} ms  API calls {calls:.0f}"
                    )
                    if path == "/keys/table":
                        per_minute = 60 / POLL_SECONDS
                        print(
                            f"  live updates: a pending key's table polls every {POLL_SECONDS} s: {per_minute:.0f} requests"
                            f" and {calls * per_minute:.0f} API calls a minute per open page, {statistics.median(server) * per_minute / 1000:.2f} s of server time"
                        )
        sizes = assets_gzip()
        total_bytes = sum(sizes.values())
        detail = ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in sizes.items())
        verdict = "met" if total_bytes <= 150 * 1024 else "MISSED"
        print(f"  JS+CSS a first visit downloads, gzip: {total_bytes / 1024:.1f} KB (<= 150 KB {verdict}): {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
