"""`promtool check rules` on the alert rules and `promtool check config` on the scrape configuration, and the
PrometheusRule manifest equal to the rules file (`--write` regenerates it)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from tools.deploy_check.common import DEPLOY, K8S, PROCESSES, ROOT, CheckFailed, run, tool

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_RULE = K8S / "base" / "monitoring" / "prometheusrule.yaml"


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def prometheus_rule_manifest() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "owr-alerts", "labels": {"app.kubernetes.io/name": "owr-alerts"}},
        "spec": {"groups": groups},
    }
    header = (
        "# GENERATED from deploy/prometheus/alerts.yml by `python -m tools.deploy_check --write`; edit that file.\n"
        "# Add the label your Prometheus selects rules on (kube-prometheus-stack: `release: <name>`) in an overlay.\n"
    )
    return header + yaml.safe_dump(manifest, sort_keys=False, width=120, allow_unicode=True)


def check_prometheus(write: bool) -> str:
    promtool = tool("promtool")
    run([promtool, "check", "rules", str(ALERTS)])
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        # The container paths of rule_files, pointed at the repository's files, so both are checked together.
        config["rule_files"] = [str(ALERTS)]
        local = Path(tmp) / "prometheus.yml"
        local.write_text(yaml.safe_dump(config))
        run([promtool, "check", "config", str(local)])
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    if jobs != {f"owr-{name}" for name in PROCESSES}:
        raise CheckFailed(f"scrape jobs {sorted(jobs)}: expected one per process")
    expected = prometheus_rule_manifest()
    if write:
        PROMETHEUS_RULE.write_text(expected)
    elif not PROMETHEUS_RULE.exists() or PROMETHEUS_RULE.read_text() != expected:
        raise CheckFailed(
            f"{PROMETHEUS_RULE.relative_to(ROOT)} differs from alerts.yml: run `python -m tools.deploy_check --write`"
        )
    return f"{len(alert_rules())} alert rules and the scrape config (promtool), PrometheusRule in sync"
