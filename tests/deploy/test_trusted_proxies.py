"""Finding 1: a gateway behind an Ingress without GATEWAY_TRUSTED_PROXIES fails `make deploy-check`."""

from __future__ import annotations

import copy
import shutil
from typing import Any

import pytest

from tools.deploy_check.kubernetes import render_overlay
from tools.deploy_check.proxies import VARIABLE, check_trusted_proxies, gateway_environment

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl renders the overlays")


def without_trusted_proxies(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            doc.get("data", {}).pop(VARIABLE, None)
    return docs


@needs_kubectl
def test_the_prod_overlay_trusts_its_ingress_and_the_check_insists():
    docs = render_overlay("prod")
    assert [doc for doc in docs if doc["kind"] == "Ingress"]
    assert gateway_environment(docs)[VARIABLE]
    assert check_trusted_proxies("prod", docs) == []
    problems = check_trusted_proxies("prod", without_trusted_proxies(docs))
    assert problems == [f"prod: owr-gateway is behind the Ingress owr-gateway but {VARIABLE} is not set"]


@needs_kubectl
def test_garbage_proxies_are_refused_and_no_ingress_needs_none():
    docs = render_overlay("prod")
    for doc in docs:
        if doc["kind"] == "ConfigMap" and VARIABLE in doc.get("data", {}):
            doc["data"][VARIABLE] = "10.0.0.0/8, ingress-pods"
    assert check_trusted_proxies("prod", docs) == [f"prod: {VARIABLE} has 'ingress-pods', not an address or network"]
    dev = render_overlay("dev")
    assert not [doc for doc in dev if doc["kind"] == "Ingress"]
    assert check_trusted_proxies("dev", without_trusted_proxies(dev)) == []
