"""Finding 13 in `make deploy-check`: no `*` forwarded-allow in compose or Kubernetes, monitoring admitted
to the admin ports only, and the monitors scrape those ports."""

from __future__ import annotations

import copy
import shutil
from typing import Any

import pytest
import yaml

from tools.deploy_check.common import COMPOSE
from tools.deploy_check.exposure import (
    compose_environments,
    compose_gateway_problems,
    kubernetes_environments,
    monitoring_problems,
    wildcard_forwarders,
)
from tools.deploy_check.kubernetes import render_overlay

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl renders the overlays")


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_compose_trusts_only_the_gateways_fixed_address():
    services = compose_services()
    assert wildcard_forwarders(compose_environments(services)) == []
    assert compose_gateway_problems(services) == []
    services["keys"]["environment"]["KEYS_FORWARDED_ALLOW_IPS"] = "*"  # what compose said before
    assert wildcard_forwarders(compose_environments(services)) == [
        "keys: KEYS_FORWARDED_ALLOW_IPS=* believes X-Forwarded-For from any peer (name the gateway)"
    ]
    assert compose_gateway_problems(services) == [
        "keys: KEYS_FORWARDED_ALLOW_IPS=* does not name the gateway (10.77.0.2)"
    ]
    services["keys"]["environment"]["KEYS_FORWARDED_ALLOW_IPS"] = "10.77.0.2"
    services["web"]["environment"]["WEB_FORWARDED_ALLOW_IPS"] = "10.77.0.5"  # itself, not the gateway
    assert compose_gateway_problems(services) == [
        "web: WEB_FORWARDED_ALLOW_IPS=10.77.0.5 does not name the gateway (10.77.0.2)"
    ]
    services["gateway"]["networks"] = ["backend", "frontend"]
    assert compose_gateway_problems(services)[0].startswith("gateway has no fixed ipv4_address")


def _with(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name)


@needs_kubectl
@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_overlays_pass_and_a_wildcard_forwarder_fails(overlay):
    docs = render_overlay(overlay)
    assert wildcard_forwarders(kubernetes_environments(docs)) == []
    assert monitoring_problems(docs) == []
    docs = copy.deepcopy(docs)
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap" and "AUTH_FORWARDED_ALLOW_IPS" in doc["data"])
    config["data"]["AUTH_FORWARDED_ALLOW_IPS"] = "10.0.0.0/8,*"
    problems = wildcard_forwarders(kubernetes_environments(docs))
    assert problems == [
        f"ConfigMap {config['metadata']['name']}: AUTH_FORWARDED_ALLOW_IPS=* believes "
        "X-Forwarded-For from any peer (name the gateway)"
    ]


@needs_kubectl
def test_monitoring_on_an_api_port_fails():
    docs = copy.deepcopy(render_overlay("dev"))
    policy = _with(docs, "NetworkPolicy", "owr-keys")
    monitoring = next(r for r in policy["spec"]["ingress"] if "namespaceSelector" in r["from"][0])
    monitoring["ports"] = [{"protocol": "TCP", "port": "http"}]  # what the base said before
    _with(docs, "ServiceMonitor", "owr-usage")["spec"]["endpoints"][0]["port"] = "http"
    assert sorted(monitoring_problems(docs)) == [
        "NetworkPolicy owr-keys: admits monitoring to ['http'], not only an admin port",
        "ServiceMonitor owr-usage: scrapes port 'http', not an admin port",
    ]
    del monitoring["ports"]  # no ports: every port
    problem = "NetworkPolicy owr-keys: admits monitoring to every port, not only an admin port"
    assert problem in monitoring_problems(docs)


def test_the_gateway_believes_web_in_compose_and_web_has_the_address_it_names():
    services = compose_services()
    trusted = services["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"]
    assert services["web"]["networks"]["backend"]["ipv4_address"] == trusted == "10.77.0.5"
    assert services["gateway"]["environment"]["GATEWAY_WEB_URL"] == "http://web:8005"
    assert "ports" not in services["web"]  # reached through the gateway only


@needs_kubectl
def test_monitoring_on_webs_pages_port_fails():
    docs = copy.deepcopy(render_overlay("prod"))
    _with(docs, "ServiceMonitor", "owr-web")["spec"]["endpoints"][0]["port"] = "http"
    assert monitoring_problems(docs) == ["ServiceMonitor owr-web: scrapes port 'http', not an admin port"]
