"""The deploy checker's own logic (tools/deploy_check/), and the compose init script on a real PostgreSQL:
one role per service, each owning its schema alone, each able to run its own migrations."""

from __future__ import annotations

import asyncio
import copy
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from tools.compose_env import example_names, generate
from tools.deploy_check import compose, kubernetes, metrics
from tools.deploy_check.common import COMPOSE, CheckFailed, loopback_variables, secret_variables
from tools.deploy_check.compose import compose_variables
from tools.deploy_check.kubernetes import validate_manifest
from tools.deploy_check.metrics import exported_series, metric_definitions, metrics_in_expr
from tools.devinfra import ROOT, create_database, drop_database

INIT_SQL = ROOT / "deploy" / "compose" / "postgres-init" / "owr-roles.psql"
INIT_SCRIPT = ROOT / "deploy" / "compose" / "postgres-init" / "10-owr-roles.sh"


def test_metric_names_are_read_from_the_prometheus_client_definitions(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from collections import Counter as C\n"
        "from prometheus_client import Counter, Gauge, Histogram\n"
        "A = Counter('owr_a_total', 'a', ['x'])\n"
        "B = Histogram('owr_b_seconds', 'b')\n"
        "G = Gauge('owr_g', 'g')\n"
        "N = C('not_a_metric')\n"
    )
    definitions = metric_definitions([tmp_path])
    assert definitions == {"owr_a_total": "Counter", "owr_b_seconds": "Histogram", "owr_g": "Gauge"}
    series = exported_series(definitions)
    assert {"owr_a_total", "owr_b_seconds_bucket", "owr_b_seconds_count", "owr_g"} <= series
    assert "owr_b_seconds" not in series  # a histogram is queried by its _bucket/_sum/_count series


def test_the_code_exports_the_metrics_design_section_7_names() -> None:
    exported = exported_series(metric_definitions(ROOT / s for s in metrics.METRIC_SOURCES))
    for name in (
        "owr_http_requests_total",
        "owr_http_request_duration_seconds_bucket",
        "owr_ratelimit_decisions_total",
        "owr_openrouter_requests_total",
        "owr_jobs_total",
        "owr_job_duration_seconds_bucket",
        "owr_queue_depth",
    ):
        assert name in exported


def test_metric_names_in_promql_skip_labels_strings_ranges_and_grafana_variables() -> None:
    expr = (
        'sum by (service, le) (rate(owr_http_request_duration_seconds_bucket{service=~"$service",'
        'route!~"/health.*|owr_fake"}[$__rate_interval])) / on(service) group_left sum(owr_x_total) and up == 0'
    )
    assert metrics_in_expr(expr) == {"owr_http_request_duration_seconds_bucket", "owr_x_total", "up"}


def test_a_query_naming_an_unexported_metric_fails() -> None:
    with pytest.raises(CheckFailed, match="owr_nope_total is not exported"):
        metrics.check_expressions("panel", ["sum(rate(owr_nope_total[5m]))"], {"owr_jobs_total"})
    with pytest.raises(CheckFailed, match="no metric of ours"):
        metrics.check_expressions("panel", ["vector(1)"], {"owr_jobs_total"})


def test_compose_secrets_are_required_and_the_template_and_generator_agree() -> None:
    variables = compose_variables(COMPOSE.read_text())
    required = {name for name, op in variables.items() if op == ":?"}
    assert {"POSTGRES_PASSWORD", "AUTH_JWT_PRIVATE_KEY", "KEYS_KEKS", "WORKER_SERVICE_CLIENT_SECRET"} <= required
    assert set(variables) - required <= compose.COMPOSE_DEFAULTS_ALLOWED
    assert required <= set(example_names()) == set(generate())


def test_each_process_secret_reaches_its_deployments() -> None:
    assert secret_variables("auth") >= {"AUTH_JWT_PRIVATE_KEY"}
    assert secret_variables("worker") == {"WORKER_SERVICE_CLIENT_SECRET"}
    assert "owr-auth" in kubernetes.secret_template_names()


def test_manifest_validation_rejects_unknown_fields_and_wrong_types() -> None:
    docs = kubernetes.render_overlay("prod")
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    validate_manifest(deployment)
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(CheckFailed, match="readinesProbe"):
        validate_manifest(bad)
    monitor = next(doc for doc in docs if doc["kind"] == "ServiceMonitor")
    bad = copy.deepcopy(monitor)
    bad["spec"]["endpoints"][0]["interval"] = "often"
    with pytest.raises(CheckFailed, match="often"):
        validate_manifest(bad)


def test_the_project_rules_catch_a_missing_probe_and_an_open_internal_port() -> None:
    docs = kubernetes.render_overlay("dev")
    secrets_names = kubernetes.secret_template_names()
    kubernetes.check_rendered("dev", docs, secrets_names)
    broken = copy.deepcopy(docs)
    keys = next(d for d in broken if d["kind"] == "Deployment" and d["metadata"]["name"] == "owr-keys")
    del keys["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    policy = next(d for d in broken if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "owr-usage")
    policy["spec"]["ingress"][0].pop("from")
    with pytest.raises(CheckFailed) as failure:
        kubernetes.check_rendered("dev", broken, secrets_names)
    assert "owr-keys: no startupProbe" in str(failure.value)
    assert "owr-usage: an ingress rule open to everyone" in str(failure.value)


# --- the compose init script on a real server ----------------------------------------------------------------


def _psql_dir() -> str:
    """psql: the embedded PostgreSQL's (pgserver, a dev dependency) unless one is on PATH."""
    import shutil

    if shutil.which("psql"):
        return str(Path(shutil.which("psql") or "").parent)
    import pgserver

    return str(Path(pgserver.__file__).parent / "pginstall" / "bin")


def _as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


async def _fetch(url: str, query: str) -> object:
    from owr_shared.db import asyncpg_url

    conn = await asyncpg.connect(asyncpg_url(url).replace("postgresql+asyncpg", "postgresql", 1))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def _libpq_env(url: str) -> dict[str, str]:
    """PGHOST/PGPORT/PGPASSWORD for psql from a libpq URL (TCP, or a socket directory in `?host=`)."""
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    return {"PGHOST": host, "PGPORT": str(parts.port or 5432), "PGPASSWORD": parts.password or ""}


def test_the_init_script_gives_each_service_a_role_owning_its_schema_alone(
    infra: dict[str, str], tmp_path: Path
) -> None:
    """deploy/compose/postgres-init as the postgres image runs it, then each service's migrations as its role."""
    suffix = secrets.token_hex(3)
    database = f"owr_roles_{suffix}"
    roles = {service: f"owr_{service}_{suffix}" for service in ("auth", "keys", "usage")}
    sql = INIT_SQL.read_text()
    for service, role in roles.items():  # unique role names: roles are global to the server
        sql = sql.replace(f"owr_{service}", role)
    (tmp_path / INIT_SQL.name).write_text(sql)
    script = tmp_path / INIT_SCRIPT.name
    script.write_text(INIT_SCRIPT.read_text())
    admin_url = infra["database_url"]
    url = create_database(admin_url, database)
    passwords = {service: secrets.token_hex(12) for service in roles}
    try:
        result = subprocess.run(
            ["bash", str(script)],
            env={
                **os.environ,
                **_libpq_env(admin_url),
                "PATH": f"{_psql_dir()}:{os.environ['PATH']}",
                "POSTGRES_USER": urlsplit(admin_url).username or "postgres",
                "POSTGRES_DB": database,
                **{f"OWR_{service.upper()}_DB_PASSWORD": password for service, password in passwords.items()},
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        for service, role in roles.items():
            role_url = _as_user(url, role, passwords[service])
            migrated = subprocess.run(
                [sys.executable, "-m", "owr_shared.migrate", service],
                env={**os.environ, "DATABASE_URL": role_url},
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
            assert migrated.returncode == 0, migrated.stderr[-2000:]
        auth_url = _as_user(url, roles["auth"], passwords["auth"])
        assert asyncio.run(_fetch(auth_url, "SELECT count(*) FROM auth.users")) == 0
        for query in ("SELECT count(*) FROM keys.keys", "CREATE SCHEMA sneaky", "CREATE TABLE public.t (x int)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                asyncio.run(_fetch(auth_url, query))
    finally:
        drop_database(admin_url, database)
        for role in roles.values():
            asyncio.run(_drop_role(admin_url, role))


async def _drop_role(admin_url: str, role: str) -> None:
    from owr_shared.db import asyncpg_url

    conn = await asyncpg.connect(asyncpg_url(admin_url).replace("postgresql+asyncpg", "postgresql", 1))
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


def test_a_setting_left_at_its_loopback_default_is_caught() -> None:
    assert {"WORKER_KEYS_URL", "WORKER_HOST", "REDIS_URL"} <= loopback_variables("worker")
    assert "DATABASE_URL" not in loopback_variables("worker")
    docs = kubernetes.render_overlay("dev")
    kubernetes.check_environments("dev", docs)
    broken = copy.deepcopy(docs)
    config = next(d for d in broken if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("owr-config"))
    del config["data"]["GATEWAY_AUTH_URL"]
    with pytest.raises(CheckFailed, match=r"owr-gateway keeps GATEWAY_AUTH_URL at its 127\.0\.0\.1 default"):
        kubernetes.check_environments("dev", broken)


def test_web_is_held_to_the_rules_of_every_process() -> None:
    assert "WEB_GATEWAY_URL" in loopback_variables("web")
    assert "DATABASE_URL" not in loopback_variables("web")  # web owns no schema
    docs = kubernetes.render_overlay("dev")
    broken = copy.deepcopy(docs)
    config = next(d for d in broken if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("owr-config"))
    del config["data"]["WEB_GATEWAY_URL"]
    with pytest.raises(CheckFailed, match=r"owr-web keeps WEB_GATEWAY_URL at its 127\.0\.0\.1 default"):
        kubernetes.check_environments("dev", broken)
    broken = [
        d for d in copy.deepcopy(docs) if (d["kind"], d["metadata"]["name"]) != ("PodDisruptionBudget", "owr-web")
    ]
    with pytest.raises(CheckFailed, match="no PodDisruptionBudget for owr-web"):
        kubernetes.check_rendered("dev", broken, kubernetes.secret_template_names())


def test_web_is_reached_from_the_gateway_alone_and_reaches_out_to_the_gateway() -> None:
    docs = kubernetes.render_overlay("prod")
    policies = {d["metadata"]["name"]: d for d in copy.deepcopy(docs) if d["kind"] == "NetworkPolicy"}
    assert kubernetes._network_rules(policies) == []
    web = policies["owr-web"]["spec"]
    web["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "owr-worker"}}})
    assert kubernetes._network_rules(policies) == [
        "owr-web: reachable from ['owr-gateway', 'owr-worker'], expected ['owr-gateway']"
    ]
    web["ingress"][0]["from"].pop()
    web["egress"] = [rule for rule in web["egress"] if "to" not in rule or "podSelector" not in rule["to"][0]]
    assert kubernetes._network_rules(policies) == ["owr-web: its egress does not reach the gateway's pods"]
    web["policyTypes"] = ["Ingress"]
    assert kubernetes._network_rules(policies) == [
        "owr-web: its egress is not restricted (gateway, Redis and DNS only)"
    ]
    gateway = policies["owr-gateway"]["spec"]["ingress"][0]
    gateway["from"] = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "owr-keys"}}}]
    assert "owr-gateway: its NetworkPolicy does not admit owr-web on its API port" in kubernetes._network_rules(
        policies
    )


def test_an_image_with_npm_packages_builds_them_and_no_other_does() -> None:
    from tools.deploy_check.images import _process_problems, build_args

    health = "http://127.0.0.1:9005/health/ready"
    args = build_args("web")
    assert args["ASSETS"] == "web"
    assert _process_problems("web", args, health) == []
    assert _process_problems("web", {**args, "ASSETS": "none"}, health) == [
        "web: ASSETS=none, expected web (services/web/package.json)"
    ]
    auth = build_args("auth")
    assert _process_problems("auth", {**auth, "ASSETS": "web"}, "http://127.0.0.1:9001/health/ready") == [
        "auth: ASSETS=web, expected none (services/auth/package.json)"
    ]


def test_the_workspace_dashboard_reads_only_what_the_workspace_exposition_serves() -> None:
    families = metrics.workspace_families()
    assert {"owr_key_spend_usd", "owr_account_runway_days"} <= families
    assert "workspace dashboard" in metrics.check_workspace_dashboard()
    with pytest.raises(CheckFailed):
        metrics.check_expressions("panel", ["owr_http_requests_total"], families)
