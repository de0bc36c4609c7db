"""A real Prometheus (Debian's package) scrapes the real processes with the project's scrape configuration,
loads the project's alert rules, and runs every alert and dashboard query against what it scraped."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.conftest import System
from tools.deploy_check.common import HTTP_SERVICES, PROCESSES
from tools.deploy_check.metrics import DASHBOARD, dashboard_queries
from tools.deploy_check.prometheus import ALERTS, SCRAPE_CONFIG, alert_rules
from tools.devinfra import free_port
from tools.devstack import Ports

PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary: `make deploy-tools` installs Debian's"),
]


def render_scrape_config(ports: Ports, directory: Path) -> Path:
    """deploy/prometheus/prometheus.yml with compose's service addresses replaced by this machine's ports."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    local = {
        "gateway:9000": ports.gateway_admin,
        "auth:9001": ports.auth_admin,
        "keys:9002": ports.keys_admin,
        "usage:9003": ports.usage_admin,
        "worker:8004": ports.worker,
        "web:9005": ports.web_admin,
    }
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [f"127.0.0.1:{local[target]}" for target in static["targets"]]
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(ALERTS)]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_prometheus(config: Path, directory: Path) -> Iterator[str]:
    """Debian's Prometheus on a free port with `config`, ready; its URL."""
    assert PROMETHEUS is not None
    port = free_port()
    log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (directory / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def prometheus(deploy_system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(render_scrape_config(deploy_system.ports, directory), directory) as url:
        yield url


def api(url: str, path: str, **params: str) -> Any:
    r = httpx.get(f"{url}/api/v1/{path}", params=params, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]


def wait_until(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_every_target_is_up_and_exports_owr_metrics(prometheus: str, deploy_system: System) -> None:
    # Traffic through the gateway, so that it and auth have RED series to show; keys and usage get a probe on
    # their API ports (scrapes go to the admin ports, which count no requests, as the gateway's).
    for _ in range(3):
        assert httpx.get(f"{deploy_system.gateway}/.well-known/jwks.json", timeout=5).status_code == 200
    for port in (deploy_system.ports.keys, deploy_system.ports.usage, deploy_system.ports.web):
        assert httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200

    def all_up() -> list[dict[str, Any]] | None:
        targets = api(prometheus, "targets")["activeTargets"]
        return targets if len(targets) == len(PROCESSES) and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(all_up, 30, "every target up")
    assert {t["labels"]["job"] for t in targets} == {f"owr-{n}" for n in PROCESSES}

    def owr_series_per_job() -> dict[str, float] | None:
        rows = api(prometheus, "query", query='count by (job) ({__name__=~"owr_.+"})')["result"]
        counts = {row["metric"]["job"]: float(row["value"][1]) for row in rows}
        return counts if len(counts) == len(PROCESSES) else None

    counts = wait_until(owr_series_per_job, 15, "owr_ series from every job")
    assert all(count > 0 for count in counts.values()), counts
    names = set(api(prometheus, "label/__name__/values"))
    for expected in (
        "owr_http_requests_total",
        "owr_http_request_duration_seconds_bucket",
        "owr_queue_depth",
        "owr_worker_heartbeat_timestamp_seconds",
        "owr_openrouter_circuit_open",
        "owr_keys_synced_total",
    ):
        assert expected in names, f"{expected} not scraped"
    # Every HTTP service counts its requests by route template.
    wait_until(
        lambda: set(HTTP_SERVICES) <= set(api(prometheus, "label/service/values")),
        15,
        "RED series of every HTTP service",
    )
    routes = api(prometheus, "query", query='owr_http_requests_total{service="gateway"}')["result"]
    assert any(row["metric"]["route"] == "/.well-known/jwks.json" for row in routes), routes


def test_the_alert_rules_load_and_every_query_runs(prometheus: str) -> None:
    groups = api(prometheus, "rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    expected = {rule["alert"] for rule in alert_rules()}
    assert set(loaded) == expected
    for name, rule in loaded.items():
        assert rule["health"] != "err", f"{name}: {rule.get('lastError')}"
    # Each alert and each dashboard query, as Grafana would send it, is valid PromQL on the scraped data.
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [expr for _, expr in dashboard_queries(dashboard)] + [str(r["expr"]) for r in alert_rules()]
    for expr in queries:
        if expr.startswith("label_values("):
            continue  # a Grafana function, not PromQL
        promql = expr.replace("$__rate_interval", "1m").replace("$service", ".*")
        api(prometheus, "query", query=promql)
