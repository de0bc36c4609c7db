"""A gateway behind an Ingress must know the Ingress's addresses (GATEWAY_TRUSTED_PROXIES): otherwise every
client has the ingress pod's address, and the per-address limits (login, failed authentications) become one
bucket for everyone, which anyone can exhaust."""

from __future__ import annotations

import ipaddress
from typing import Any

GATEWAY = "owr-gateway"
VARIABLE = "GATEWAY_TRUSTED_PROXIES"


def _ingress_backends(ingress: dict[str, Any]) -> set[str]:
    spec = ingress.get("spec", {})
    services = {spec.get("defaultBackend", {}).get("service", {}).get("name")}
    for rule in spec.get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            services.add(path.get("backend", {}).get("service", {}).get("name"))
    return {name for name in services if name}


def gateway_environment(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The variables the gateway's containers get from ConfigMaps and `env` (Secrets are not read here)."""
    config_maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in docs if doc["kind"] == "ConfigMap"}
    environment: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] != GATEWAY:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    environment.update(config_maps.get(source["configMapRef"]["name"], {}))
            environment.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
    return environment


def check_trusted_proxies(overlay: str, docs: list[dict[str, Any]]) -> list[str]:
    """Problems of one rendered overlay: an Ingress in front of the gateway, and no valid trusted proxies."""
    fronted = [doc for doc in docs if doc["kind"] == "Ingress" and GATEWAY in _ingress_backends(doc)]
    if not fronted:
        return []
    value = gateway_environment(docs).get(VARIABLE, "").strip()
    entries = [part.strip() for part in value.strip("[]").replace('"', "").split(",") if part.strip()]
    if not entries:
        names = ", ".join(doc["metadata"]["name"] for doc in fronted)
        return [f"{overlay}: {GATEWAY} is behind the Ingress {names} but {VARIABLE} is not set"]
    problems = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(f"{overlay}: {VARIABLE} has {entry!r}, not an address or network")
    return problems
