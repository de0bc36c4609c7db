"""Minimal JSON schemas of the Prometheus Operator kinds (monitoring.coreos.com/v1), for the fields this
project's manifests use: kubernetes-validate knows only Kubernetes' own kinds."""

from __future__ import annotations

from typing import Any

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
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
_SELECTOR = {"type": "object", "properties": {"matchLabels": _STRINGS}, "minProperties": 1}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": "string"},
        "for": {"type": "string"},
        "labels": _STRINGS,
        "annotations": _STRINGS,
    },
}
_GROUP = {
    "type": "object",
    "required": ["name", "rules"],
    "properties": {"name": {"type": "string"}, "rules": {"type": "array", "items": _RULE}},
}


def _kind(spec_properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A monitoring.coreos.com/v1 object whose spec holds exactly these properties."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": required,
                "properties": spec_properties,
            },
        },
    }


def _monitor(endpoints: str) -> dict[str, Any]:
    """ServiceMonitor and PodMonitor differ only in the name of their list of endpoints."""
    properties = {
        "selector": _SELECTOR,
        endpoints: {"type": "array", "minItems": 1, "items": _ENDPOINT},
        "namespaceSelector": {"type": "object"},
    }
    return _kind(properties, ["selector", endpoints])


OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _monitor("endpoints"),
    "PodMonitor": _monitor("podMetricsEndpoints"),
    "PrometheusRule": _kind({"groups": {"type": "array", "minItems": 1, "items": _GROUP}}, ["groups"]),
}
