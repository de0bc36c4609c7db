"""The Grafana dashboard parsed, every query (and every alert) naming only metrics the code exports, found by
reading the `prometheus_client` definitions in the sources."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tools.deploy_check.common import K8S, ROOT, CheckFailed
from tools.deploy_check.prometheus import alert_rules

DASHBOARD = K8S / "base" / "monitoring" / "owr-dashboard.json"
# A workspace's own dashboard (issue 17): its queries read `GET /api/v1/metrics`, whose families are built
# per request (`GaugeMetricFamily`) in this folder, never the operator's metrics.
WORKSPACE_DASHBOARD = ROOT / "deploy" / "grafana" / "workspace-dashboard.json"
WORKSPACE_METRICS = ROOT / "services" / "usage" / "src" / "owr_usage" / "workspace_metrics"
METRIC_SOURCES = (
    "shared/src",
    "gateway/src",
    "services/auth/src",
    "services/keys/src",
    "services/usage/src",
    "services/worker/src",
)

_PROM_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def _prometheus_names_in(tree: ast.Module) -> set[str]:
    """Local names bound to prometheus_client's metric classes in one module."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client":
            for alias in node.names:
                if alias.name in _PROM_TYPES:
                    names.add(alias.asname or alias.name)
    return names


def metric_definitions(sources: Iterable[Path]) -> dict[str, str]:
    """{metric name: type} for every prometheus_client metric constructed with a literal name."""
    found: dict[str, str] = {}
    for source in sources:
        for path in sorted(source.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            local = _prometheus_names_in(tree)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                func = node.func
                kind = None
                if isinstance(func, ast.Name) and func.id in local:
                    kind = func.id
                elif (
                    isinstance(func, ast.Attribute)
                    and func.attr in _PROM_TYPES
                    and isinstance(func.value, ast.Name)
                    and func.value.id == "prometheus_client"
                ):
                    kind = func.attr
                first = node.args[0]
                if kind and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found[first.value] = kind
    return found


def exported_series(definitions: dict[str, str]) -> set[str]:
    """The series names Prometheus sees for each definition (prometheus_client's naming rules)."""
    series: set[str] = set()
    for name, kind in definitions.items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            series |= {f"{base}_total", f"{base}_created"}
        elif kind == "Histogram":
            series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
        elif kind == "Summary":
            series |= {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
        elif kind == "Info":
            series.add(f"{name}_info")
        else:
            series.add(name)
    return series


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metrics_in_expr(expr: str) -> set[str]:
    """The `owr_` metric names (and `up`) a PromQL expression reads.

    Strings, label matchers, ranges and Grafana variables are removed first; what remains of interest
    are identifiers, and ours all start with `owr_` (label names and functions never do).
    """
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "", text)
    names = set()
    for match in _IDENT.finditer(text):
        identifier = match.group(0)
        if identifier.startswith("owr_") or identifier == "up":
            names.add(identifier)
    return names


def check_expressions(where: str, exprs: list[str], exported: set[str]) -> None:
    problems = []
    for expr in exprs:
        names = metrics_in_expr(expr)
        if not names:
            problems.append(f"{where}: no metric of ours in {expr!r}")
        for name in sorted(names - exported - {"up"}):
            problems.append(f"{where}: {name} is not exported by the code (in {expr!r})")
    if problems:
        raise CheckFailed("\n".join(problems))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query in the dashboard, variables included."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((str(panel.get("title")), str(target.get("expr", ""))))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            expr = query.get("query") if isinstance(query, dict) else query
            out.append((f"variable {variable.get('name')}", str(expr)))
    return out


REQUIRED_ALERT_TOPICS = {
    "error ratio": "OwrHighErrorRatio",
    "p99 latency": "OwrHighLatencyP99",
    "failed jobs": "OwrJobsFailing",
    "stale syncs": "OwrSyncsStale",
    "keys turning invalid": "OwrKeysTurningInvalid",
    "queue backlog": "OwrQueueBacklog",
    "rate-limiter backend errors": "OwrRateLimiterBackendErrors",
    "OpenRouter circuit open": "OwrOpenRouterCircuitOpen",
    "requests shed under overload": "OwrRequestsShed",
    "stuck alert outbox": "OwrAlertOutboxStuck",
}


def check_metrics_named() -> str:
    exported = exported_series(metric_definitions(ROOT / s for s in METRIC_SOURCES))
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dashboard)
    if not queries:
        raise CheckFailed("the dashboard has no queries")
    for title, expr in queries:
        check_expressions(f"dashboard panel {title!r}", [expr], exported)
    rules = alert_rules()
    for rule in rules:
        check_expressions(f"alert {rule.get('alert')}", [str(rule["expr"])], exported)
    names = {rule.get("alert") for rule in rules}
    missing = [topic for topic, alert in REQUIRED_ALERT_TOPICS.items() if alert not in names]
    if missing:
        raise CheckFailed(f"no alert for: {missing}")
    for rule in rules:
        if "severity" not in rule.get("labels", {}) or "summary" not in rule.get("annotations", {}):
            raise CheckFailed(f"alert {rule.get('alert')}: needs a severity label and a summary")
    return (
        f"{len(queries)} dashboard queries and {len(rules)} alerts name only exported metrics ({len(exported)} series)"
    )


def workspace_families(source: Path = WORKSPACE_METRICS) -> set[str]:
    """The names of the `GaugeMetricFamily`s the workspace exposition builds (literal first arguments)."""
    names: set[str] = set()
    for path in sorted(source.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "GaugeMetricFamily"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def check_workspace_dashboard() -> str:
    exported = workspace_families()
    if not exported:
        raise CheckFailed(f"no metric family found in {WORKSPACE_METRICS.relative_to(ROOT)}")
    queries = dashboard_queries(json.loads(WORKSPACE_DASHBOARD.read_text()))
    if not queries:
        raise CheckFailed("the workspace dashboard has no queries")
    for title, expr in queries:
        check_expressions(f"workspace dashboard panel {title!r}", [expr], exported)
    return f"{len(queries)} workspace dashboard queries name only GET /api/v1/metrics's {len(exported)} families"
