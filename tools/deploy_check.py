"""`make deploy-check`: static checks of everything that deploys the system and cannot run here.

- hadolint on every Dockerfile;
- docker-compose.yml: the compose-spec JSON schema (raw and interpolated with a generated env file),
  then the rules of this project: every `depends_on` names a service and a valid condition, every
  long-running process has a health check, every secret is required (`${VAR:?...}`, no default), the env
  template holds only placeholders, every mounted file and Dockerfile exists;
- the Kubernetes manifests of each overlay, rendered with kustomize (`kubectl kustomize`) and validated
  against the Kubernetes schemas (kubernetes-validate, strict) or, for the Prometheus Operator's kinds,
  against schemas written here; then this project's rules (probes, resources, preStop, grace period,
  monitors, HPAs, PDBs, NetworkPolicies, the Secret template holding placeholders only);
- `promtool check rules` on the alert rules and `promtool check config` on the scrape configuration, and
  the PrometheusRule manifest equal to the rules file (`--write` regenerates it);
- the Grafana dashboard parsed, every query (and every alert) naming only metrics the code exports,
  found by reading the `prometheus_client` definitions in the sources.

Prints one line per check and `N passed, N failed`; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_RULE = K8S / "base" / "monitoring" / "prometheusrule.yaml"
DASHBOARD = K8S / "base" / "monitoring" / "owr-dashboard.json"
SECRET_TEMPLATE = K8S / "secret.template.yaml"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose" / "env.example"
DOCKERFILES = {
    "gateway": ROOT / "gateway" / "Dockerfile",
    "auth": ROOT / "services" / "auth" / "Dockerfile",
    "keys": ROOT / "services" / "keys" / "Dockerfile",
    "usage": ROOT / "services" / "usage" / "Dockerfile",
    "worker": ROOT / "services" / "worker" / "Dockerfile",
}
METRIC_SOURCES = (
    "shared/src",
    "gateway/src",
    "services/auth/src",
    "services/keys/src",
    "services/usage/src",
    "services/worker/src",
)
KUBERNETES_VERSION = "1.31.0"
HTTP_SERVICES = ("gateway", "auth", "keys", "usage")
PROCESSES = (*HTTP_SERVICES, "worker")
PROCESSES_WITHOUT_DATABASE = frozenset({"gateway", "worker"})
# Variables compose may default: none of them is a secret.
COMPOSE_DEFAULTS_ALLOWED = frozenset({"LOG_LEVEL", "OPENROUTER_BASE_URL", "OWR_PUBLIC_PORT"})


SETTINGS_CLASSES = {
    "gateway": ("owr_gateway.settings", "GatewaySettings"),
    "auth": ("owr_auth.settings", "AuthSettings"),
    "keys": ("owr_keys.settings", "KeysSettings"),
    "usage": ("owr_usage.settings", "UsageSettings"),
    "worker": ("owr_worker.settings", "WorkerSettings"),
}


class CheckFailed(Exception):
    pass


def _settings_class(process: str) -> Any:
    import importlib

    module, name = SETTINGS_CLASSES[process]
    return getattr(importlib.import_module(module), name)


def _env_name(cls: Any, field_name: str, info: Any) -> str:
    alias = info.validation_alias if isinstance(info.validation_alias, str) else None
    return (alias or f"{cls.model_config.get('env_prefix', '')}{field_name}").upper()


def loopback_variables(process: str) -> set[str]:
    """Variables whose default points at this machine (127.0.0.1): a deployment must set every one."""
    cls = _settings_class(process)
    found = {
        _env_name(cls, field_name, info)
        for field_name, info in cls.model_fields.items()
        if "127.0.0.1" in str(info.default)
    }
    # Every settings class inherits DATABASE_URL; the gateway and the worker own nothing in PostgreSQL.
    return found - {"DATABASE_URL"} if process in PROCESSES_WITHOUT_DATABASE else found


def dockerfile_env(process: str) -> set[str]:
    """Names the runtime stage of a process's Dockerfile sets with ENV."""
    text = DOCKERFILES[process].read_text().split("AS runtime", 1)[-1].replace("\\\n", " ")
    names = set()
    for line in text.splitlines():
        if line.startswith("ENV "):
            names |= {pair.split("=", 1)[0] for pair in line[4:].split() if "=" in pair}
    return names


def secret_variables(process: str) -> set[str]:
    """The environment variables of a process's settings declared with `secret_field`."""
    cls = _settings_class(process)
    return {
        _env_name(cls, field_name, info)
        for field_name, info in cls.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
    }


def tool(name: str) -> str:
    """A tool from the virtualenv (uv.lock) or PATH (Debian packages)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise CheckFailed(f"{name} is not installed: run `make deploy-tools`")
    return found


def run(args: list[str], *, cwd: Path = ROOT) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CheckFailed(f"{' '.join(args[:3])} ... failed:\n{result.stdout}{result.stderr}".rstrip())
    return result.stdout


# --- metrics the code exports -------------------------------------------------------------------------

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


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


# --- the checks ------------------------------------------------------------------------------------------


def check_hadolint() -> str:
    for name, dockerfile in DOCKERFILES.items():
        if not dockerfile.exists():
            raise CheckFailed(f"missing Dockerfile for {name}: {dockerfile}")
        run([tool("hadolint"), "--failure-threshold", "info", str(dockerfile)])
        text = dockerfile.read_text()
        for needed in ("--frozen", f"--package owr-{name}", "USER 10001", "HEALTHCHECK", "AS runtime"):
            if needed not in text:
                raise CheckFailed(f"{dockerfile.relative_to(ROOT)} lacks {needed!r}")
    if not (ROOT / ".dockerignore").exists():
        raise CheckFailed(".dockerignore is missing")
    return f"{len(DOCKERFILES)} Dockerfiles"


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def compose_variables(text: str) -> dict[str, str | None]:
    """{variable: its operator (`:?`, `:-`, ...) or None} for every `${...}` in the compose file."""
    out: dict[str, str | None] = {}
    for match in _INTERPOLATION.finditer(text):
        name, operator = match.group(1), match.group(2)
        if out.get(name) in (":?", "?"):
            continue
        out[name] = operator
    return out


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation: applied to every string of the parsed file (keys stay as written)."""

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if operator in (":-", "-"):
            return argument or ""
        raise CheckFailed(f"compose needs {name}, which the env file does not set")

    if isinstance(value, str):
        return _INTERPOLATION.sub(one, value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    return value


def _env_file_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name] = value.strip("'\"")
    return values


def check_compose() -> str:
    from owr_shared.settings import is_placeholder
    from tools.compose_env import generate

    text = COMPOSE.read_text()
    run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    variables = compose_variables(text)
    defaulted = sorted(name for name, op in variables.items() if op not in (":?", "?"))
    bad_defaults = [name for name in defaulted if name not in COMPOSE_DEFAULTS_ALLOWED]
    if bad_defaults:
        raise CheckFailed(f"compose variables that must be required (${{VAR:?...}}), not defaulted: {bad_defaults}")
    required = sorted(name for name, op in variables.items() if op in (":?", "?"))
    example = _env_file_values(COMPOSE_ENV_EXAMPLE)
    missing = [name for name in required if name not in example]
    if missing:
        raise CheckFailed(f"{COMPOSE_ENV_EXAMPLE.relative_to(ROOT)} does not list {missing}")
    working = [
        name for name, value in example.items() if name != "KEYS_ACTIVE_KEK_VERSION" and not is_placeholder(value)
    ]
    if working:
        raise CheckFailed(f"the env template holds working values (placeholders only): {working}")

    generated = {name: value.strip("'") for name, value in generate().items()}
    not_generated = [name for name in required if name not in generated]
    if not_generated:
        raise CheckFailed(f"tools/compose_env.py does not generate {not_generated}")
    document = interpolate(yaml.safe_load(text), generated)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as handle:
        yaml.safe_dump(document, handle)
    try:
        # The values are throwaway secrets, but an error report must still not print them.
        run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "-o", "text", handle.name])
    except CheckFailed:
        raise CheckFailed("the interpolated compose file breaks the compose-spec schema (values withheld)") from None
    finally:
        Path(handle.name).unlink()

    services: dict[str, Any] = document["services"]
    problems = []
    for name in (*PROCESSES, "postgres", "redis", "migrate-auth", "migrate-keys", "migrate-usage"):
        if name not in services:
            problems.append(f"service {name} is missing")
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for target, spec in depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends):
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
            condition = spec.get("condition")
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                problems.append(f"{name} -> {target}: condition {condition!r}")
            elif condition == "service_healthy" and "healthcheck" not in services.get(target, {}):
                problems.append(f"{name} waits for {target} to be healthy, which has no healthcheck")
        if not name.startswith("migrate-") and "healthcheck" not in service:
            problems.append(f"{name} has no healthcheck")
        build = service.get("build")
        if build and not (ROOT / build["context"] / build["dockerfile"]).exists():
            problems.append(f"{name}: {build['dockerfile']} does not exist")
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist")
    for name in PROCESSES:
        service = services.get(name, {})
        for variable in sorted(secret_variables(name) - set(service.get("environment", {}))):
            problems.append(f"{name} does not receive its secret {variable}")
        given = set(service.get("environment", {})) | dockerfile_env(name)
        for variable in sorted(loopback_variables(name) - given):
            problems.append(f"{name} keeps {variable} at its 127.0.0.1 default")
        for target in ("redis",):
            if target not in service.get("depends_on", {}):
                problems.append(f"{name} does not wait for {target}")
    if [n for n, s in services.items() if s.get("ports") and n not in ("gateway", "prometheus", "grafana")]:
        problems.append("only the gateway (and the observability profile, on 127.0.0.1) may publish ports")
    for name in ("prometheus", "grafana"):
        if services.get(name, {}).get("profiles") != ["observability"]:
            problems.append(f"{name} belongs to the observability profile only")
    if problems:
        raise CheckFailed("\n".join(problems))
    docker = shutil.which("docker")
    compose_plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if compose_plugin and compose_plugin.returncode == 0:
        with tempfile.TemporaryDirectory() as tmp:
            env_file = Path(tmp) / ".env"
            env_file.write_text("".join(f"{k}={v}\n" for k, v in generate().items()))
            run([str(docker), "compose", "--env-file", str(env_file), "-f", str(COMPOSE), "config", "--quiet"])
        return f"{len(services)} services (schema, rules, docker compose config)"
    return f"{len(services)} services (schema, raw and interpolated; rules)"


# Minimal schemas of the Prometheus Operator kinds (monitoring.coreos.com/v1), for the fields used here.
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "path": {"type": "string", "pattern": "^/"},
        "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "scrapeTimeout": {"type": "string"},
        "honorLabels": {"type": "boolean"},
        "scheme": {"enum": ["http", "https"]},
    },
    "required": ["port"],
}
_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
    "minProperties": 1,
}
_META = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": _SELECTOR,
                    "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                    "namespaceSelector": {"type": "object"},
                },
            },
        },
    },
    "PodMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "podMetricsEndpoints"],
                "properties": {
                    "selector": _SELECTOR,
                    "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                    "namespaceSelector": {"type": "object"},
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["expr"],
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string"},
                                            "for": {"type": "string"},
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def render_overlay(overlay: str) -> list[dict[str, Any]]:
    """The manifests `kubectl apply -k deploy/k8s/overlays/<overlay>` would send."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CheckFailed("kubectl (with its built-in kustomize) is not installed: run `make deploy-tools`")
    out = run([kubectl, "kustomize", str(K8S / "overlays" / overlay)])
    return [doc for doc in yaml.safe_load_all(out) if doc]


def validate_manifest(doc: dict[str, Any]) -> None:
    import jsonschema
    import kubernetes_validate  # type: ignore[import-untyped]

    kind = doc.get("kind", "")
    where = f"{kind}/{doc.get('metadata', {}).get('name')}"
    try:
        if kind in OPERATOR_SCHEMAS:
            jsonschema.validate(doc, OPERATOR_SCHEMAS[kind])
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        raise CheckFailed(f"{where}: {exc.message} (at {path or 'top'})") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise CheckFailed(f"{where}: no Kubernetes schema for {doc.get('apiVersion')} {kind}") from None


def _containers(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec.get("containers", [])


def check_rendered(overlay: str, docs: list[dict[str, Any]], secret_names: set[str]) -> None:
    """This project's rules on one rendered overlay."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    problems: list[str] = []
    deployments = by_kind.get("Deployment", {})
    config_maps = set(by_kind.get("ConfigMap", {}))
    for name in PROCESSES:
        deployment = deployments.get(f"owr-{name}")
        if deployment is None:
            problems.append(f"no Deployment owr-{name}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace < (130 if name == "worker" else 35):
            problems.append(f"owr-{name}: terminationGracePeriodSeconds {grace} is too short to drain")
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(f"owr-{name}: not runAsNonRoot")
        for container in pod["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"owr-{name}: no {probe}")
            if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/health/ready":
                problems.append(f"owr-{name}: readiness is not /health/ready")
            for probe in ("startupProbe", "livenessProbe"):
                if container.get(probe, {}).get("httpGet", {}).get("path") != "/health/live":
                    problems.append(f"owr-{name}: {probe} is not /health/live")
            resources = container.get("resources", {})
            if not (
                resources.get("requests", {}).keys() >= {"cpu", "memory"}
                and resources.get("limits", {}).keys() >= {"cpu", "memory"}
            ):
                problems.append(f"owr-{name}: requests and limits of cpu and memory")
            if name != "worker" and "preStop" not in container.get("lifecycle", {}):
                problems.append(f"owr-{name}: no preStop pause")
        for container in _containers(pod):
            for source in container.get("envFrom", []):
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                    problems.append(f"owr-{name}: ConfigMap {source['configMapRef']['name']} is not rendered")
                if "secretRef" in source and source["secretRef"]["name"] not in secret_names:
                    problems.append(f"owr-{name}: Secret {source['secretRef']['name']} is not in the template")
    job = by_kind.get("Job", {}).get("owr-migrate")
    if job is None:
        problems.append("no migration Job owr-migrate")
    else:
        commands = [" ".join(c.get("command", [])) for c in _containers(job["spec"]["template"]["spec"])]
        for service in ("auth", "keys", "usage"):
            if f"python -m owr_shared.migrate {service}" not in commands:
                problems.append(f"owr-migrate does not migrate {service}")
    services = by_kind.get("Service", {})
    for name in HTTP_SERVICES:
        if f"owr-{name}" not in services:
            problems.append(f"no Service owr-{name}")
        if f"owr-{name}" not in by_kind.get("ServiceMonitor", {}):
            problems.append(f"no ServiceMonitor owr-{name}")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(f"owr-{name}")
        if hpa is None or hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
            problems.append(f"no HorizontalPodAutoscaler for owr-{name}")
    if "owr-worker" not in by_kind.get("PodMonitor", {}):
        problems.append("no PodMonitor for the worker")
    for name in PROCESSES:
        pdb = by_kind.get("PodDisruptionBudget", {}).get(f"owr-{name}")
        if pdb is None or pdb["spec"]["selector"]["matchLabels"] != {"app.kubernetes.io/name": f"owr-{name}"}:
            problems.append(f"no PodDisruptionBudget for owr-{name}")
    policies = by_kind.get("NetworkPolicy", {})
    deny = policies.get("owr-default-deny-ingress")
    if deny is None or deny["spec"]["podSelector"] != {} or deny["spec"].get("ingress"):
        problems.append("no default-deny ingress NetworkPolicy")
    problems += _network_rules(policies)
    rules = by_kind.get("PrometheusRule", {})
    if len(rules) != 1:
        problems.append("expected one PrometheusRule")
    if problems:
        raise CheckFailed("\n".join(f"{overlay}: {p}" for p in problems))


def _network_rules(policies: dict[str, dict[str, Any]]) -> list[str]:
    """Only the gateway is open to all; each /internal port only to the pods that call it."""
    expected_callers = {
        "owr-auth": {"owr-gateway", "owr-keys", "owr-usage", "owr-worker"},
        "owr-keys": {"owr-gateway", "owr-worker", "owr-auth"},
        "owr-usage": {"owr-gateway", "owr-worker", "owr-auth"},
        "owr-worker": set(),
    }
    problems = []
    for name, callers in expected_callers.items():
        policy = policies.get(name)
        if policy is None:
            problems.append(f"no NetworkPolicy {name}")
            continue
        seen: set[str] = set()
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if not peers:
                problems.append(f"{name}: an ingress rule open to everyone")
                continue
            for peer in peers:
                pod = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if pod is not None:
                    seen.add(pod)
                elif "namespaceSelector" not in peer:
                    problems.append(f"{name}: a peer that is neither a pod of ours nor the monitoring namespace")
        if seen != callers:
            problems.append(f"{name}: reachable from {sorted(seen)}, expected {sorted(callers)}")
    return problems


def secret_template_names() -> set[str]:
    from owr_shared.settings import is_placeholder

    docs = [doc for doc in yaml.safe_load_all(SECRET_TEMPLATE.read_text()) if doc]
    problems = []
    for doc in docs:
        validate_manifest(doc)
        for key, value in doc.get("stringData", {}).items():
            # A URL carries its placeholder in the password; JSON carries it in the secret field.
            if not is_placeholder(str(value)) and "change-me" not in str(value):
                problems.append(f"Secret {doc['metadata']['name']}: {key} is not a placeholder")
        if doc.get("data"):
            problems.append(f"Secret {doc['metadata']['name']}: use stringData placeholders, never data")
    for process in PROCESSES:
        held: dict[str, Any] = next(
            (d.get("stringData", {}) for d in docs if d["metadata"]["name"] == f"owr-{process}"), {}
        )
        for variable in sorted(secret_variables(process) - set(held)):
            problems.append(f"Secret owr-{process} lacks {variable}, a secret of {process}'s settings")
    if problems:
        raise CheckFailed("\n".join(problems))
    return {doc["metadata"]["name"] for doc in docs}


def check_environments(overlay: str, docs: list[dict[str, Any]]) -> None:
    """Every setting that defaults to 127.0.0.1 is given to each Deployment (ConfigMap or Secret)."""
    secret_keys = {
        doc["metadata"]["name"]: set(doc.get("stringData", {}))
        for doc in yaml.safe_load_all(SECRET_TEMPLATE.read_text())
        if doc
    }
    config_maps = {doc["metadata"]["name"]: set(doc.get("data", {})) for doc in docs if doc["kind"] == "ConfigMap"}
    problems = []
    for process in PROCESSES:
        deployment = next(
            (d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"owr-{process}"), None
        )
        if deployment is None:
            continue
        given: set[str] = set()
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            given |= {item["name"] for item in container.get("env", [])}
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    given |= config_maps.get(source["configMapRef"]["name"], set())
                if "secretRef" in source:
                    given |= secret_keys.get(source["secretRef"]["name"], set())
        for variable in sorted(loopback_variables(process) - given):
            problems.append(f"{overlay}: owr-{process} keeps {variable} at its 127.0.0.1 default")
    if problems:
        raise CheckFailed("\n".join(problems))


def check_kubernetes() -> str:
    secrets = secret_template_names()
    counts = []
    for overlay in OVERLAYS:
        docs = render_overlay(overlay)
        for doc in docs:
            validate_manifest(doc)
        check_rendered(overlay, docs, secrets)
        check_environments(overlay, docs)
        counts.append(f"{overlay}: {len(docs)}")
    return f"manifests rendered and valid against Kubernetes {KUBERNETES_VERSION} ({', '.join(counts)}; secret template: {len(secrets)})"


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


REQUIRED_ALERT_TOPICS = {
    "error ratio": "OwrHighErrorRatio",
    "p99 latency": "OwrHighLatencyP99",
    "failed jobs": "OwrJobsFailing",
    "stale syncs": "OwrSyncsStale",
    "keys turning invalid": "OwrKeysTurningInvalid",
    "queue backlog": "OwrQueueBacklog",
    "rate-limiter backend errors": "OwrRateLimiterBackendErrors",
    "OpenRouter circuit open": "OwrOpenRouterCircuitOpen",
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


@dataclass
class Report:
    passed: int = 0
    failed: list[str] = field(default_factory=list)

    def run(self, name: str, check: Callable[[], str]) -> None:
        try:
            detail = check()
        except CheckFailed as exc:
            self.failed.append(name)
            print(f"FAIL {name}\n  " + str(exc).replace("\n", "\n  "), flush=True)
        else:
            self.passed += 1
            print(f"ok   {name}: {detail}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploy_check", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the PrometheusRule from alerts.yml")
    args = parser.parse_args(argv)
    report = Report()
    report.run("hadolint", check_hadolint)
    report.run("compose", check_compose)
    report.run("prometheus", lambda: check_prometheus(args.write))
    report.run("kubernetes", check_kubernetes)
    report.run("dashboard and alert metrics", check_metrics_named)
    print(f"deploy-check: {report.passed} passed, {len(report.failed)} failed", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
