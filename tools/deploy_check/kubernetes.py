"""The Kubernetes manifests of each overlay, rendered with kustomize (`kubectl kustomize`) and validated against
the Kubernetes schemas (kubernetes-validate, strict) or, for the Prometheus Operator's kinds, against the schemas
of operator_schemas; then this project's rules (probes, resources, preStop, grace period, monitors, HPAs, PDBs,
NetworkPolicies, the Secret template holding placeholders only)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import yaml

from tools.deploy_check.common import (
    HTTP_SERVICES,
    K8S,
    PROCESSES,
    CheckFailed,
    loopback_variables,
    run,
    secret_variables,
)
from tools.deploy_check.exposure import kubernetes_environments, monitoring_problems, wildcard_forwarders
from tools.deploy_check.operator_schemas import OPERATOR_SCHEMAS
from tools.deploy_check.proxies import check_trusted_proxies

OVERLAYS = ("dev", "prod")
SECRET_TEMPLATE = K8S / "secret.template.yaml"
KUBERNETES_VERSION = "1.31.0"


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
        "owr-web": {"owr-gateway"},
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
    return problems + _web_egress_problems(policies)


def _selects(peer: dict[str, Any], name: str) -> bool:
    return bool(peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == name)


def _web_egress_problems(policies: dict[str, dict[str, Any]]) -> list[str]:
    """web reaches out only to the gateway (the public API), Redis and DNS, and the gateway admits it."""
    web = policies.get("owr-web")
    if web is None:
        return []
    problems = []
    egress = web["spec"].get("egress", [])
    if "Egress" not in web["spec"].get("policyTypes", []) or not egress:
        problems.append("owr-web: its egress is not restricted (gateway, Redis and DNS only)")
    elif not any(any(_selects(peer, "owr-gateway") for peer in rule.get("to", [])) for rule in egress):
        problems.append("owr-web: its egress does not reach the gateway's pods")
    gateway = policies.get("owr-gateway", {}).get("spec", {}).get("ingress", [])
    admits = [
        rule
        for rule in gateway
        if any(port.get("port") in ("http", 8000) for port in rule.get("ports", []))
        and (not rule.get("from") or any(_selects(peer, "owr-web") for peer in rule["from"]))
    ]
    if not admits:
        problems.append("owr-gateway: its NetworkPolicy does not admit owr-web on its API port")
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
        exposure = wildcard_forwarders(kubernetes_environments(docs)) + monitoring_problems(docs)
        if problems := check_trusted_proxies(overlay, docs) + [f"{overlay}: {p}" for p in exposure]:
            raise CheckFailed("\n".join(problems))
        counts.append(f"{overlay}: {len(docs)}")
    return f"manifests rendered and valid against Kubernetes {KUBERNETES_VERSION} ({', '.join(counts)}; secret template: {len(secrets)})"
