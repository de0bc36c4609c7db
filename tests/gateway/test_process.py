"""`python -m owr_gateway` as a real process: both ports, JSON request logs, a limit shared with another
gateway, and a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.gateway.conftest import GatewayFactory, Served, SigningKey, Upstream, bearer, free_port, scrape_metrics

LIMITS = {
    "anonymous": {"limit": 1000, "window": 3600},
    "login": {"limit": 1000, "window": 3600},
    "user": {"limit": 4, "window": 3600},
}


@dataclass
class Process(Served):
    popen: asyncio.subprocess.Process
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()


@pytest.fixture
async def gateway_process(
    upstream: Upstream, redis_url: str, tmp_path: Path, client: aiohttp.ClientSession
) -> AsyncIterator[Process]:
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "OWR_ENV": "test",
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_PORT": str(admin_port),
        "GATEWAY_AUTH_URL": upstream.url("auth"),
        "GATEWAY_KEYS_URL": upstream.url("keys"),
        "GATEWAY_USAGE_URL": upstream.url("usage"),
        "GATEWAY_RATE_LIMITS": json.dumps(LIMITS),
    }
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        popen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "owr_gateway", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    process = Process(port=port, admin_port=admin_port, popen=popen, log=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert popen.returncode is None, log.read_text()
            try:
                async with client.get(process.admin_url + "/health/ready") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "gateway process did not become ready"
            await asyncio.sleep(0.1)
        yield process
    finally:
        if popen.returncode is None:
            popen.kill()
            await popen.wait()


async def test_process_serves_logs_and_stops_gracefully(
    gateway_process: Process,
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    redis_client: Redis,
):
    in_process = await make_gateway(rate_limits=LIMITS)
    token = signing_key.token()
    statuses = []
    for i in range(6):
        base = gateway_process.url if i % 2 == 0 else in_process.url
        headers = {**bearer(token), "X-Request-ID": f"proc-test-{i}"}
        async with client.get(base + "/api/v1/keys", headers=headers) as response:
            statuses.append(response.status)
    # One budget in Redis, whichever process counts.
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert len(upstream.seen) == 4

    metrics = await scrape_metrics(client, gateway_process)
    assert 'owr_http_requests_total{method="GET",route="/api/v1/keys",service="gateway",status="200"} 2.0' in metrics
    assert 'owr_http_requests_total{method="GET",route="/api/v1/keys",service="gateway",status="429"} 1.0' in metrics

    gateway_process.popen.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(gateway_process.popen.wait(), 15) == 0

    lines = gateway_process.lines()
    logged = [json.loads(line) for line in lines if '"event":"request"' in line]
    requests = [r for r in logged if r["route"] == "/api/v1/keys"]
    assert [r["request_id"] for r in requests] == ["proc-test-0", "proc-test-2", "proc-test-4"]
    assert [(r["route"], r["status"]) for r in logged if r not in requests] == [("<unmatched>", 404)]
    first = requests[0]
    assert first["service"] == "gateway"
    assert (first["method"], first["route"], first["status"]) == ("GET", "/api/v1/keys", 200)
    assert isinstance(first["duration_ms"], float)
    assert len(first["trace_id"]) == 32
    assert requests[2]["status"] == 429
    output = "\n".join(lines)
    assert token not in output
    assert token.split(".")[1] not in output
