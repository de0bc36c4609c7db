"""Gateway settings: upstreams, the routing table and the rate-limit policies (all env-overridable)."""

from __future__ import annotations

import json
import secrets
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from owr_gateway.paths import is_internal_path
from owr_shared.settings import BaseServiceSettings, secret_field

UpstreamName = Literal["auth", "keys", "usage", "web"]
PolicyName = Literal["anonymous", "login", "user", "token", "auth_failure", "web"]
DEFAULT_AUTH_URL = "http://127.0.0.1:8001"


class RouteConfig(BaseModel):
    """One routing-table entry: a path prefix, where it goes, how it is authenticated and limited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: str
    upstream: UpstreamName
    auth: Literal["none", "jwt"]
    policy: PolicyName
    methods: frozenset[str] | None = None

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value.startswith("/") or value == "/":
            raise ValueError("a route prefix starts with '/' and names at least one segment")
        if value.endswith("/") or "//" in value or "%" in value or "\\" in value:
            raise ValueError("a route prefix is a plain path without '//', '%' or a trailing '/'")
        if any(seg in (".", "..") for seg in value.split("/")):
            raise ValueError("a route prefix has no dot segments")
        if any("*" in seg and seg != "*" for seg in value.split("/")):
            raise ValueError("a '*' in a route prefix is a whole segment")
        if is_internal_path(value) or value.lower().startswith("/internal"):
            raise ValueError("routes under /internal are never exposed")
        return value

    @field_validator("methods")
    @classmethod
    def _upper_methods(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("methods, when given, is a non-empty list")
        return frozenset(m.upper() for m in value)


class RateLimitPolicy(BaseModel):
    """A fixed-window limit: `limit` requests per `window` seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(ge=1)
    window: int = Field(ge=1, le=86400)


DEFAULT_ROUTES: tuple[dict[str, Any], ...] = (
    {"prefix": "/api/v1/auth/register", "upstream": "auth", "auth": "none", "policy": "login"},
    {"prefix": "/api/v1/auth/login", "upstream": "auth", "auth": "none", "policy": "login"},
    {"prefix": "/api/v1/auth/refresh", "upstream": "auth", "auth": "none", "policy": "anonymous"},
    {"prefix": "/api/v1/auth/logout", "upstream": "auth", "auth": "none", "policy": "anonymous"},
    # Emailed links (issue 16): the token is the credential; the request for one is limited like a login.
    {"prefix": "/api/v1/auth/password-reset", "upstream": "auth", "auth": "none", "policy": "login"},
    {"prefix": "/api/v1/auth/verify-email", "upstream": "auth", "auth": "none", "policy": "login"},
    {"prefix": "/api/v1/auth/verify-email/resend", "upstream": "auth", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/auth", "upstream": "auth", "auth": "jwt", "policy": "user"},
    {"prefix": "/.well-known/jwks.json", "upstream": "auth", "auth": "none", "policy": "anonymous"},
    {"prefix": "/api/v1/tokens", "upstream": "auth", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/workspaces", "upstream": "auth", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/invitations", "upstream": "auth", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/keys", "upstream": "keys", "auth": "jwt", "policy": "user"},
    # A key's writes to OpenRouter and its state there (issue 17): usage records them, the worker carries them out.
    {"prefix": "/api/v1/keys/*/apply-limit", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/keys/*/enable-upstream", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/keys/*/disable-upstream", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/keys/*/upstream", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/keys/*/kill-switch", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/usage", "upstream": "usage", "auth": "jwt", "policy": "user"},
    # A workspace's own Prometheus text (issue 17); the gateway's /metrics is on its admin port, not here.
    {"prefix": "/api/v1/metrics", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/budgets", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/channels", "upstream": "usage", "auth": "jwt", "policy": "user"},
    # An email channel's confirmation link (double opt-in): the recipient may have no account; the token is the
    # credential, limited like a login.
    {"prefix": "/api/v1/channel-confirmations", "upstream": "usage", "auth": "none", "policy": "login"},
    {"prefix": "/api/v1/alerts", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/alert-rules", "upstream": "usage", "auth": "jwt", "policy": "user"},
    {"prefix": "/api/v1/insights", "upstream": "usage", "auth": "jwt", "policy": "user"},
)
DEFAULT_RATE_LIMITS: dict[str, dict[str, int]] = {
    "anonymous": {"limit": 120, "window": 60},
    "login": {"limit": 10, "window": 60},
    "user": {"limit": 600, "window": 60},
    # Per API token, unless the token carries its own per-minute limit (capped at "user": a token's
    # requests also count against its owner's "user" bucket).
    "token": {"limit": 600, "window": 60},
    # Failed authentications (an invalid JWT or API token) per client address (IPv6 by /64): past it,
    # 429 instead of 401, and unknown API tokens are no longer introspected.
    "auth_failure": {"limit": 30, "window": 60},
    # The web dashboard's pages, forms and static files, per client address: a page and its polls.
    "web": {"limit": 300, "window": 60},
}


def _default_rate_limits() -> dict[PolicyName, RateLimitPolicy]:
    return {name: RateLimitPolicy(**config) for name, config in DEFAULT_RATE_LIMITS.items()}  # type: ignore[misc]


class GatewaySettings(BaseServiceSettings):
    """`GATEWAY_*` variables; `GATEWAY_ROUTES` and `GATEWAY_RATE_LIMITS` take JSON."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=None, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    admin_port: int = Field(default=9000, ge=0, le=65535)
    auth_url: str = DEFAULT_AUTH_URL
    keys_url: str = "http://127.0.0.1:8002"
    usage_url: str = "http://127.0.0.1:8003"
    # The web dashboard: every path outside /api/, /.well-known/, /docs, /health and /metrics goes there
    # (unset: those paths are a 404, as for an API-only deployment).
    web_url: str | None = None
    jwks_url: str = ""  # empty: "{auth_url}/.well-known/jwks.json"
    jwt_issuer: str = "owr-auth"
    jwt_audience: str = "owr-api"
    routes: list[RouteConfig] = Field(default_factory=lambda: [RouteConfig(**r) for r in DEFAULT_ROUTES])
    rate_limits: dict[PolicyName, RateLimitPolicy] = Field(default_factory=lambda: _default_rate_limits())
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_read_timeout: float = Field(default=30.0, gt=0)
    upstream_pool_size: int = Field(default=256, ge=1)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_timeout: float = Field(default=0.25, gt=0)
    redis_breaker_seconds: float = Field(default=1.0, ge=0)
    jwt_cache_size: int = Field(default=10000, ge=0)
    # Strict-Transport-Security's max-age, sent only to clients that came over TLS (0: never sent).
    hsts_seconds: int = Field(default=31_536_000, ge=0)
    # Every client reaches the gateway over TLS (it ends at an Ingress or load balancer in front):
    # send HSTS even when that proxy does not say so in X-Forwarded-Proto.
    public_tls: bool = False

    # API tokens: auth's pepper names their Redis cache entries (so auth can delete one on revocation),
    # and the gateway's client credentials (scope `tokens:introspect`) call auth's introspection.
    api_token_pepper: SecretStr | None = secret_field("the same value as AUTH_API_TOKEN_PEPPER")
    service_client_id: str = Field(default="gateway", min_length=1, max_length=64)
    service_client_secret: SecretStr | None = secret_field("client secret registered in AUTH_SERVICE_CLIENTS")
    introspection_timeout: float = Field(default=3.0, gt=0, le=30)
    # How long auth's "not active" for an API token is remembered (keyed by the token's HMAC).
    negative_token_cache_seconds: int = Field(default=10, ge=1, le=300)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_other_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if not data.get("jwks_url"):
            auth_url = str(data.get("auth_url") or DEFAULT_AUTH_URL).rstrip("/")
            data = {**data, "jwks_url": f"{auth_url}/.well-known/jwks.json"}
        return data

    @field_validator("auth_url", "keys_url", "usage_url", "web_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("an upstream URL starts with http:// or https://")
        return value.rstrip("/")

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _merge_rate_limits(cls, value: Any) -> Any:
        # An override names only the policies it changes; the others keep their defaults.
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            return {**DEFAULT_RATE_LIMITS, **value}
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # raises ValueError on garbage
        return value

    @model_validator(mode="after")
    def _check_routes(self) -> GatewaySettings:
        prefixes = [route.prefix for route in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("route prefixes must be unique")
        return self

    @cached_property
    def api_token_pepper_bytes(self) -> bytes:
        """The pepper's bytes; without one (never in production) a random one, so cache entries are
        still private to this process but auth cannot name them: a revocation then waits out the cache."""
        if self.api_token_pepper is None:
            return secrets.token_bytes(32)
        return self.api_token_pepper.get_secret_value().encode("utf-8")

    def upstream_url(self, name: str) -> str:
        urls = {"auth": self.auth_url, "keys": self.keys_url, "usage": self.usage_url, "web": self.web_url}
        url = urls[name]
        if url is None:
            raise KeyError(name)
        return url

    @property
    def upstreams(self) -> tuple[str, ...]:
        """The upstreams this gateway forwards to: the API's services, and web when it is configured."""
        return ("auth", "keys", "usage", "web") if self.web_url else ("auth", "keys", "usage")
