"""Issue 17's "done means": a real Prometheus scrapes `GET /api/v1/metrics` through the gateway with an API
token read from a file (`authorization.credentials_file`, as the README's scrape job), and the workspace's
per-key series are read back from Prometheus's query API."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.test_prometheus_scrape import PROMETHEUS, api, running_prometheus, wait_until
from tests.e2e.conftest import System
from tests.e2e.emulator_admin import fault_free_emulator
from tests.e2e.test_keys_journey import signed_in
from tests.e2e.test_sync_journey import Watcher
from tools.deploy_check.metrics import WORKSPACE_DASHBOARD, dashboard_queries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary: `make deploy-tools` installs Debian's"),
]


def workspace_scrape_config(gateway: str, token_file: Path, directory: Path) -> Path:
    """The README's scrape job, aimed at this machine's gateway."""
    job = {
        "job_name": "openrouter-watcher",
        "scheme": "http",
        "metrics_path": "/api/v1/metrics",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
        "static_configs": [{"targets": [urlsplit(gateway).netloc]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}))
    return path


async def test_prometheus_scrapes_a_workspace_with_a_token_and_serves_its_key_series(
    deploy_system: System, tmp_path: Path
) -> None:
    async with (
        fault_free_emulator(deploy_system.emulator) as emulator,
        httpx.AsyncClient(base_url=deploy_system.gateway, timeout=15) as client,
    ):
        account = await emulator.account("100")
        key = await emulator.key(account, "inference", name="scraped")
        session = await signed_in(client)
        key_id = await Watcher(client, session).add("scraped", key["key"])
        r = await client.post("/api/v1/tokens", headers=session, json={"name": "prometheus", "scopes": ["usage:read"]})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        direct = await client.get("/api/v1/metrics", headers={"authorization": f"Bearer {token}"})
        assert direct.status_code == 200, direct.text
        # Another user's workspace, scraped with another token, never shows this key.
        other = await signed_in(client)
        assert key_id not in (await client.get("/api/v1/metrics", headers=other)).text

    served = {
        (sample.labels["window"]): sample.value
        for family in text_string_to_metric_families(direct.text)
        for sample in family.samples
        if family.name == "owr_key_spend_usd" and sample.labels["key_id"] == key_id
    }
    assert set(served) == {"day", "week", "month"}
    token_file = tmp_path / "owr-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    with running_prometheus(workspace_scrape_config(deploy_system.gateway, token_file, tmp_path), tmp_path) as url:

        def up() -> list[dict[str, object]] | None:
            targets = api(url, "targets")["activeTargets"]
            return targets if targets and all(t["health"] == "up" for t in targets) else None

        wait_until(up, 30, "the workspace target up")

        def key_series() -> list[dict[str, object]] | None:
            rows = api(url, "query", query=f'owr_key_spend_usd{{key_id="{key_id}"}}')["result"]
            return rows if len(rows) == 3 else None

        rows = wait_until(key_series, 30, "the key's spend series")
        assert {row["metric"]["window"]: float(row["value"][1]) for row in rows} == served
        assert all(row["metric"]["key_name"] for row in rows)
        for name in ("owr_key_last_sync_age_seconds", "owr_key_status"):
            assert api(url, "query", query=f'{name}{{key_id="{key_id}"}}')["result"], name
        # Only this workspace's keys: every scraped key series names this key.
        scraped = api(url, "query", query='count by (key_id) ({__name__=~"owr_key_.+"})')["result"]
        assert [row["metric"]["key_id"] for row in scraped] == [key_id]
        # Every query of the workspace dashboard is valid PromQL on what was scraped, and finds the key.
        for _, expr in dashboard_queries(json.loads(WORKSPACE_DASHBOARD.read_text())):
            if expr.startswith("label_values("):
                continue  # a Grafana function, not PromQL
            api(url, "query", query=expr.replace("$key", ".*"))
