"""Finding 13: whose X-Forwarded-For a service believes, and what monitoring may reach.

A `*_FORWARDED_ALLOW_IPS` of `*` lets any peer choose its client address (and so the per-address limits
and the logs); it must name the gateway's address or the cluster's pod range. Monitoring is admitted to
the admin ports only (`/metrics`, `/health`), never to a port that also serves `/api/v1` and `/internal`,
and the ServiceMonitors and PodMonitors scrape those ports.
"""

from __future__ import annotations

from typing import Any

FORWARDED = "FORWARDED_ALLOW_IPS"
# The ports that serve only /metrics and /health: the HTTP services' admin port, the worker's metrics port.
ADMIN_PORT_NAMES = frozenset({"admin", "metrics"})


def wildcard_forwarders(environments: dict[str, dict[str, Any]]) -> list[str]:
    """Each `*_FORWARDED_ALLOW_IPS` that trusts every peer, in {where: its variables}."""
    problems = []
    for where, environment in environments.items():
        for name, value in environment.items():
            if name.endswith(FORWARDED) and "*" in {part.strip() for part in str(value).split(",")}:
                problems.append(f"{where}: {name}=* believes X-Forwarded-For from any peer (name the gateway)")
    return problems


def compose_environments(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service.get("environment") or {} for name, service in services.items()}


def compose_gateway_problems(services: dict[str, Any]) -> list[str]:
    """Every service's trusted forwarders include the gateway's fixed address on the backend network."""
    networks = services.get("gateway", {}).get("networks", {})
    address = networks.get("backend", {}).get("ipv4_address") if isinstance(networks, dict) else None
    if not address:
        return ["gateway has no fixed ipv4_address on the backend network to name as the trusted proxy"]
    problems = []
    for name, environment in compose_environments(services).items():
        for variable, value in environment.items():
            if variable.endswith(FORWARDED) and address not in {part.strip() for part in str(value).split(",")}:
                problems.append(f"{name}: {variable}={value} does not name the gateway ({address})")
    return problems


def kubernetes_environments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """ConfigMaps' data and every container's literal `env`, by the document that holds them."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        where = f"{doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            out[where] = doc.get("data") or {}
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            out.setdefault(where, {}).update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    return out


def monitoring_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Monitoring (a namespace peer) admitted to anything but an admin port, or scraping one."""
    problems = []
    for doc in docs:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        spec = doc.get("spec", {})
        if doc["kind"] == "NetworkPolicy":
            for rule in spec.get("ingress", []):
                if not any("namespaceSelector" in peer for peer in rule.get("from", [])):
                    continue
                ports = [port.get("port") for port in rule.get("ports", [])]
                if not ports or any(port not in ADMIN_PORT_NAMES for port in ports):
                    problems.append(f"{name}: admits monitoring to {ports or 'every port'}, not only an admin port")
        endpoints = spec.get("endpoints", []) + spec.get("podMetricsEndpoints", [])
        for endpoint in endpoints if doc["kind"] in ("ServiceMonitor", "PodMonitor") else []:
            if endpoint.get("port") not in ADMIN_PORT_NAMES:
                problems.append(f"{name}: scrapes port {endpoint.get('port')!r}, not an admin port")
    return problems
