"""Pure functions and settings: path screening, prefix matching, client address, configuration."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from owr_gateway.clientip import TrustedProxies, resolve_client_ip
from owr_gateway.paths import PATH_INTERNAL, PATH_MALFORMED, PATH_OK, is_internal_path, screen_path
from owr_gateway.routing import RouteTable
from owr_gateway.settings import GatewaySettings, RouteConfig


def screen(raw: str) -> int:
    from urllib.parse import unquote

    return screen_path(unquote(raw), raw.encode())


SCREENED = {
    # `/internal` in any spelling is hidden.
    "/internal": PATH_INTERNAL,
    "/internal/": PATH_INTERNAL,
    "/internal/keys/1/reveal": PATH_INTERNAL,
    "/INTERNAL/keys": PATH_INTERNAL,
    "/Internal/keys": PATH_INTERNAL,
    "//internal/keys": PATH_INTERNAL,
    "///internal": PATH_INTERNAL,
    "/%69nternal/keys": PATH_INTERNAL,
    "/%2finternal/keys": PATH_INTERNAL,
    "/%2Finternal/keys": PATH_INTERNAL,
    "/%5cinternal/keys": PATH_INTERNAL,
    "/./internal/keys": PATH_INTERNAL,
    "/api/v1/keys/../../../internal/keys": PATH_INTERNAL,
    "/api/v1/%2e%2e/%2e%2e/internal": PATH_INTERNAL,
    "/api/%252e%252e/internal": PATH_INTERNAL,
    "/%2569nternal/keys": PATH_INTERNAL,
    "/internal;jsessionid=1": PATH_INTERNAL,
    "/internal%00/x": PATH_INTERNAL,
    # Paths that could be read two ways are refused.
    "/api/v1/keys/../auth/me": PATH_MALFORMED,
    "/api/v1/keys/./x": PATH_MALFORMED,
    "/api/v1/keys/%2e%2e/x": PATH_MALFORMED,
    "/api/v1/keys/%2E/x": PATH_MALFORMED,
    "/api/v1/keys%2fx": PATH_MALFORMED,
    "/api/v1/keys%2Fx": PATH_MALFORMED,
    "/api/v1/keys%5cx": PATH_MALFORMED,
    "/api/v1/keys/%252e%252e/x": PATH_MALFORMED,
    "/api/v1/keys/%252fx": PATH_MALFORMED,
    "/api/v1/keys/..": PATH_MALFORMED,
    # Ordinary paths pass.
    "/api/v1/keys": PATH_OK,
    "/api/v1/keys/abc": PATH_OK,
    "/.well-known/jwks.json": PATH_OK,
    "/api/v1/usage/daily": PATH_OK,
    "/internals": PATH_OK,
    "/api/v1/internal": PATH_OK,
    "/api/v1/keys/a%20b": PATH_OK,
    "/x/.hidden": PATH_OK,
}


@pytest.mark.parametrize(("raw", "expected"), SCREENED.items())
def test_screen_path(raw: str, expected: int):
    assert screen(raw) == expected


def test_is_internal_path_ignores_lookalikes():
    assert not is_internal_path("/internalx")
    assert not is_internal_path("/api/internal")
    assert is_internal_path("/a/../internal")


def table() -> RouteTable:
    return RouteTable(GatewaySettings(OWR_ENV="test").routes)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/api/v1/keys", "/api/v1/keys"),
        ("/api/v1/keys/", "/api/v1/keys"),
        ("/api/v1/keys/abc/sync", "/api/v1/keys"),
        ("/api/v1/keysx", None),
        ("/api/v1/auth/login", "/api/v1/auth/login"),
        ("/api/v1/auth/loginx", "/api/v1/auth"),
        # Two-factor sign-in's second step is anonymous and under the login policy; the rest need a JWT.
        ("/api/v1/auth/login/mfa", "/api/v1/auth/login"),
        ("/api/v1/auth/2fa/setup", "/api/v1/auth"),
        ("/api/v1/auth/sessions/revoke-all", "/api/v1/auth"),
        ("/api/v1/auth/me", "/api/v1/auth"),
        ("/api/v1/auth/register/", "/api/v1/auth/register"),
        ("/.well-known/jwks.json", "/.well-known/jwks.json"),
        ("/api/v1/usage/summary", "/api/v1/usage"),
        ("/api/v1", None),
        ("/", None),
        ("/metrics", None),
        ("/internal/keys", None),
        # A key's writes to OpenRouter and its state there are usage's (a `*` segment is any one segment).
        ("/api/v1/keys/abc/upstream", "/api/v1/keys/*/upstream"),
        ("/api/v1/keys/abc/apply-limit", "/api/v1/keys/*/apply-limit"),
        ("/api/v1/keys/abc/enable-upstream/", "/api/v1/keys/*/enable-upstream"),
        ("/api/v1/keys/abc/disable-upstream", "/api/v1/keys/*/disable-upstream"),
        ("/api/v1/keys/abc/kill-switch", "/api/v1/keys/*/kill-switch"),
        ("/api/v1/keys/{key_id}/upstream", "/api/v1/keys/*/upstream"),
        ("/api/v1/keys//upstream", "/api/v1/keys"),
        ("/api/v1/keys/abc/upstreamx", "/api/v1/keys"),
        ("/api/v1/keys/upstream", "/api/v1/keys"),
    ],
)
def test_longest_segment_aware_prefix(path: str, prefix: str | None):
    route = table().match(path)
    assert (route.prefix if route else None) == prefix


def test_default_route_policies():
    routes = {r.prefix: (r.upstream, r.requires_jwt, r.policy) for r in table().routes}
    assert routes == {
        "/api/v1/auth/register": ("auth", False, "login"),
        "/api/v1/auth/login": ("auth", False, "login"),
        "/api/v1/auth/refresh": ("auth", False, "anonymous"),
        "/api/v1/auth/logout": ("auth", False, "anonymous"),
        "/api/v1/auth/password-reset": ("auth", False, "login"),
        "/api/v1/auth/verify-email": ("auth", False, "login"),
        "/api/v1/auth/verify-email/resend": ("auth", True, "user"),
        "/api/v1/auth": ("auth", True, "user"),
        "/api/v1/tokens": ("auth", True, "user"),
        "/api/v1/workspaces": ("auth", True, "user"),
        "/api/v1/invitations": ("auth", True, "user"),
        "/.well-known/jwks.json": ("auth", False, "anonymous"),
        "/api/v1/keys": ("keys", True, "user"),
        "/api/v1/keys/*/apply-limit": ("usage", True, "user"),
        "/api/v1/keys/*/enable-upstream": ("usage", True, "user"),
        "/api/v1/keys/*/disable-upstream": ("usage", True, "user"),
        "/api/v1/keys/*/upstream": ("usage", True, "user"),
        "/api/v1/keys/*/kill-switch": ("usage", True, "user"),
        "/api/v1/usage": ("usage", True, "user"),
        "/api/v1/metrics": ("usage", True, "user"),
        "/api/v1/budgets": ("usage", True, "user"),
        "/api/v1/channels": ("usage", True, "user"),
        "/api/v1/channel-confirmations": ("usage", False, "login"),
        "/api/v1/alerts": ("usage", True, "user"),
        "/api/v1/alert-rules": ("usage", True, "user"),
        "/api/v1/insights": ("usage", True, "user"),
    }


@pytest.mark.parametrize("prefix", ["/internal", "/internal/keys", "/Internal", "/INTERNAL/x", "/internals"])
def test_settings_refuse_internal_routes(prefix: str):
    with pytest.raises(ValidationError, match="internal"):
        RouteConfig(prefix=prefix, upstream="keys", auth="none", policy="anonymous")


@pytest.mark.parametrize("prefix", ["api", "/", "/api/", "/a//b", "/a/../b", "/a/%2e", "/a/b*/c"])
def test_settings_refuse_odd_prefixes(prefix: str):
    with pytest.raises(ValidationError):
        RouteConfig(prefix=prefix, upstream="keys", auth="none", policy="anonymous")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY_AUTH_URL", "http://auth.internal:9001/")
    monkeypatch.setenv(
        "GATEWAY_ROUTES",
        json.dumps(
            [{"prefix": "/api/v1/things", "upstream": "usage", "auth": "jwt", "policy": "user", "methods": ["get"]}]
        ),
    )
    monkeypatch.setenv("GATEWAY_RATE_LIMITS", '{"login": {"limit": 3, "window": 30}}')
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.1, 10.1.0.0/16")
    settings = GatewaySettings()
    assert settings.auth_url == "http://auth.internal:9001"
    assert settings.jwks_url == "http://auth.internal:9001/.well-known/jwks.json"
    assert [r.prefix for r in settings.routes] == ["/api/v1/things"]
    assert settings.routes[0].methods == frozenset({"GET"})
    # An override names only what it changes; the other policies keep their defaults.
    assert (settings.rate_limits["login"].limit, settings.rate_limits["login"].window) == (3, 30)
    assert settings.rate_limits["user"].limit == 600
    assert settings.rate_limits["anonymous"].limit == 120
    assert settings.trusted_proxies == ["10.0.0.1", "10.1.0.0/16"]


def test_settings_defaults():
    settings = GatewaySettings(OWR_ENV="test")
    assert (settings.host, settings.port, settings.admin_port) == ("127.0.0.1", 8000, 9000)
    assert settings.jwks_url == "http://127.0.0.1:8001/.well-known/jwks.json"
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.rate_limits["login"].limit, settings.rate_limits["login"].window) == (10, 60)
    assert settings.trusted_proxies == []


def test_settings_refuse_internal_route_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "GATEWAY_ROUTES", '[{"prefix": "/internal", "upstream": "keys", "auth": "none", "policy": "anonymous"}]'
    )
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_settings_refuse_garbage_proxies():
    with pytest.raises(ValidationError):
        GatewaySettings(OWR_ENV="test", trusted_proxies=["not-an-ip"])


def test_client_ip_is_the_peer_unless_the_peer_is_trusted():
    none = TrustedProxies([])
    proxies = TrustedProxies(["10.0.0.1", "10.0.0.2", "192.168.0.0/24"])
    assert resolve_client_ip("203.0.113.9", "1.2.3.4", none) == "203.0.113.9"
    assert resolve_client_ip("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    assert resolve_client_ip("10.0.0.1", "1.2.3.4", proxies) == "1.2.3.4"
    # The client wrote the left part itself: the right-most untrusted entry wins.
    assert resolve_client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", proxies) == "1.2.3.4"
    assert resolve_client_ip("10.0.0.1", "6.6.6.6, 1.2.3.4, 192.168.0.7", proxies) == "1.2.3.4"
    assert resolve_client_ip("10.0.0.1", "10.0.0.2", proxies) == "10.0.0.2"
    assert resolve_client_ip("10.0.0.1", "garbage", proxies) == "10.0.0.1"
    assert resolve_client_ip("10.0.0.1", "1.2.3.4, garbage", proxies) == "10.0.0.1"
    assert resolve_client_ip("10.0.0.1", None, proxies) == "10.0.0.1"


def test_merged_openapi_keeps_public_paths_and_renames_clashing_schemas():
    from owr_gateway.openapi import merge

    def doc(path: str, title: str) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Thing"}
        operation = {"responses": {"200": {"content": {"application/json": {"schema": ref}}}}}
        return {
            "paths": {path: {"get": operation}, "/internal/x": {"get": operation}, "/health/live": {"get": operation}},
            "components": {"schemas": {"Thing": {"title": title}, "ProblemDetail": {"title": "ProblemDetail"}}},
        }

    merged = merge(
        {"keys": doc("/api/v1/keys", "KeyThing"), "usage": doc("/api/v1/usage/summary", "UsageThing")}, table()
    )
    assert set(merged["paths"]) == {"/api/v1/keys", "/api/v1/usage/summary"}
    schemas = merged["components"]["schemas"]
    assert schemas["Thing"] == {"title": "KeyThing"}
    assert schemas["UsageThing"] == {"title": "UsageThing"}
    usage_ref = merged["paths"]["/api/v1/usage/summary"]["get"]["responses"]["200"]["content"]["application/json"]
    assert usage_ref["schema"] == {"$ref": "#/components/schemas/UsageThing"}
    assert merged["paths"]["/api/v1/keys"]["get"]["security"] == [{"sessionJwt": []}, {"apiToken": []}]
