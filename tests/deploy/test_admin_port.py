"""Finding 13, on a real process served by `owr_shared.serve.run_service` (as auth, keys and usage are):
`/metrics` only on the admin port, and X-Forwarded-For believed only from the peers named."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tools.devinfra import free_port
from tools.devstack import ProcessGroup, ProcessSpec


@pytest.fixture
def slow_service(tmp_path) -> Iterator[tuple[str, str]]:
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "OWR_ENV": "test",
        "SLOW_PORT": str(port),
        "SLOW_ADMIN_PORT": str(admin_port),
        "SLOW_FORWARDED_ALLOW_IPS": "10.77.0.2",  # the gateway in compose, not this test's 127.0.0.1
    }
    group = ProcessGroup(env, log_dir=tmp_path)
    group.start(ProcessSpec("slow", "tests.deploy.slow_app", port))
    try:
        group.wait_ready(timeout=30)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    finally:
        group.stop()


def test_metrics_leave_the_api_port_for_the_admin_port(slow_service):
    api, admin = slow_service
    assert httpx.get(f"{api}/fast", timeout=5).status_code == 200
    assert httpx.get(f"{api}/metrics", timeout=5).status_code == 404
    r = httpx.get(f"{admin}/metrics", timeout=5)
    assert r.status_code == 200
    assert "owr_http_requests_total" in r.text or "owr_http_request_duration_seconds" in r.text
    assert httpx.get(f"{admin}/health/ready", timeout=5).status_code == 200
    assert httpx.get(f"{api}/health/live", timeout=5).status_code == 200  # probes may use either port
    # The admin port serves nothing of the API.
    assert httpx.get(f"{admin}/fast", timeout=5).status_code == 404
    assert httpx.get(f"{admin}/whoami", timeout=5).status_code == 404


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(slow_service):
    api, _ = slow_service
    r = httpx.get(f"{api}/whoami", headers={"x-forwarded-for": "203.0.113.9"}, timeout=5)
    assert r.json() == {"client": "127.0.0.1"}
