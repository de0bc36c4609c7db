"""Auth service settings: `AUTH_*` variables on top of the shared infrastructure ones.

Argon2 parameters have OWASP's minimum (m=19 MiB, t=2, p=1) as a floor. Only `OWR_ENV=test` may go
below it, so the test suite does not spend seconds hashing; every other environment refuses to start.

Errors never echo input (`hide_input_in_errors`): the input holds the signing key and client secrets.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Annotated, Literal, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from owr_shared.envelope import KekSettings
from owr_shared.settings import Environment, HttpServiceSettings, Port, http_url, is_placeholder, secret_field

# OWASP Password Storage Cheat Sheet, argon2id minimum configuration.
ARGON2_MIN_MEMORY_KIB = 19456
ARGON2_MIN_TIME_COST = 2
ARGON2_MIN_PARALLELISM = 1
ACCESS_TOKEN_MAX_TTL_SECONDS = 15 * 60
SERVICE_TOKEN_MAX_TTL_SECONDS = 15 * 60
SERVICE_CLIENT_SECRET_MIN_LENGTH = 32
# The `sub` of the service tokens auth mints for its own calls; no configured client may take it.
AUTH_CLIENT_ID = "auth"

# Every scope a service token can carry (docs/architecture.md, "Service tokens and the internal API").
ServiceScope = Literal[
    "keys:due",
    "keys:reveal",
    "keys:status",
    "usage:ingest",
    "usage:cleanup",
    "alerts:deliver",
    "workspaces:delete",
    "workspaces:sweep",
    "tokens:introspect",
    "mail:render",
]
ClientId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Audience = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


def _pem(value: str) -> str:
    # Env files and some secret stores flatten newlines to a literal "\n"; accept both forms.
    return value.replace("\\n", "\n").strip() + "\n"


class ServiceClient(BaseModel):
    """One entry of `AUTH_SERVICE_CLIENTS`: a process that may obtain service tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    secret: SecretStr
    scopes: frozenset[ServiceScope] = Field(min_length=1)
    audiences: frozenset[Audience] = Field(min_length=1)

    @field_validator("secret")
    @classmethod
    def _check_secret_length(cls, value: SecretStr) -> SecretStr:
        # Checked here rather than with `min_length`, so no constraint error can carry the value.
        if len(value.get_secret_value()) < SERVICE_CLIENT_SECRET_MIN_LENGTH:
            raise ValueError(f"must be at least {SERVICE_CLIENT_SECRET_MIN_LENGTH} characters")
        return value


class AuthSettings(KekSettings, HttpServiceSettings):
    """Configuration of the auth service (`AUTH_` prefix); `AUTH_KEKS` / `AUTH_ACTIVE_KEK_VERSION` (`KekSettings`)
    seal the TOTP secrets of two-factor sign-in."""

    model_config = SettingsConfigDict(
        env_prefix="AUTH_", env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    port: Port = 8001
    admin_port: Port = 9001

    jwt_private_key: SecretStr | None = secret_field(
        "Ed25519 private key (PKCS#8 PEM) that signs access tokens; ephemeral outside production when unset."
    )
    # Public PEMs of keys that signed tokens still alive; published in the JWKS during a rotation.
    jwt_retired_public_keys: list[str] = Field(default_factory=list)
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=ACCESS_TOKEN_MAX_TTL_SECONDS)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300, le=365 * 24 * 3600)

    argon2_memory_kib: int = Field(default=ARGON2_MIN_MEMORY_KIB, ge=8, le=4 * 1024 * 1024)
    argon2_time_cost: int = Field(default=ARGON2_MIN_TIME_COST, ge=1, le=20)
    argon2_parallelism: int = Field(default=ARGON2_MIN_PARALLELISM, ge=1, le=16)
    # Concurrent argon2 computations; bounds memory (memory_kib each) and keeps CPU for the rest.
    argon2_max_concurrency: int = Field(default=4, ge=1, le=64)

    login_max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    # A failure counter lives this long after its last failure (plus any lockout it caused).
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)
    # The n-th lockout lasts base * 2**(n-1) seconds, capped.
    login_lockout_base_seconds: int = Field(default=2, ge=1, le=3600)
    login_lockout_max_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)

    # client_id -> credentials, scopes and audiences; JSON in the environment. Secrets are never logged.
    service_clients: dict[ClientId, ServiceClient] = Field(default_factory=dict)
    service_token_ttl_seconds: int = Field(default=300, ge=30, le=SERVICE_TOKEN_MAX_TTL_SECONDS)
    # Personal API tokens are stored as HMAC-SHA-256 under this pepper; the gateway holds the same value
    # to name its cache entries (GATEWAY_API_TOKEN_PEPPER). Ephemeral outside production when unset.
    api_token_pepper: SecretStr | None = secret_field("at least 32 random characters; HMAC key of API tokens")
    api_token_default_days: int = Field(default=90, ge=1, le=365)
    # Lifetime of the JWT an introspection hands the gateway for an API-token caller.
    api_token_access_ttl_seconds: int = Field(default=300, ge=90, le=ACCESS_TOKEN_MAX_TTL_SECONDS)
    # A token's own per-minute limit may not exceed the user's (the gateway's `user` policy, 600/min by
    # default): set both together. Tokens made before the cap are held to it at introspection.
    api_token_max_rate_limit_per_minute: int = Field(default=600, ge=1, le=100_000)
    # Live (unrevoked, unexpired) tokens a user may hold at once.
    api_tokens_per_user_max: int = Field(default=50, ge=1, le=10_000)

    # Two-factor sign-in (TOTP): the secrets are sealed under `AUTH_KEKS` (`KekSettings`, the envelope scheme),
    # the recovery codes stored as HMAC-SHA-256 under this pepper. Ephemeral outside production when unset.
    recovery_code_pepper: SecretStr | None = secret_field("at least 32 random characters; HMAC key of recovery codes")
    # Wrong codes (login's second step, enable, disable) before a lockout: per user from any address, per address.
    mfa_max_failures_per_user: int = Field(default=5, ge=1, le=1000)
    mfa_max_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    # How long the second step of a sign-in may follow the first.
    mfa_challenge_ttl_seconds: int = Field(default=300, ge=30, le=900)
    # Workspaces a user may own at once (their personal one included), and open invitations per workspace.
    workspaces_per_user_max: int = Field(default=20, ge=1, le=10_000)
    invitations_open_max: int = Field(default=50, ge=1, le=10_000)
    # Where the web app answers, through the gateway (DESIGN §12): the links in emails
    # (`/invite?token=...`, `/verify-email?token=...`, `/reset-password?token=...`) start here.
    public_base_url: str = Field(
        default="http://localhost:8000",
        validation_alias=AliasChoices("AUTH_PUBLIC_BASE_URL", "PUBLIC_BASE_URL", "public_base_url"),
    )

    # Where account deletion asks keys, then usage, to erase a workspace's data. An empty usage URL
    # leaves usage out (only for tests of auth alone); every deployment sets both.
    keys_url: str = "http://127.0.0.1:8002"
    usage_url: str | None = "http://127.0.0.1:8003"
    # Connect, read and write timeout of each call auth makes to another service.
    internal_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Email (docs/architecture.md, "Email from auth"). The ARQ queue the worker reads (`send_auth_mail` jobs).
    queue_name: str = Field(default="arq:queue", min_length=1)
    # A link's lifetime counts from the moment the worker renders the email (when its token is minted).
    email_verification_ttl_seconds: int = Field(default=48 * 3600, ge=300, le=14 * 24 * 3600)
    password_reset_ttl_seconds: int = Field(default=30 * 60, ge=60, le=3600)
    # Requests per window: password resets per client address and per email address (known or not),
    # verification emails per account. Past a limit: 429.
    account_mail_window_seconds: int = Field(default=3600, ge=60, le=24 * 3600)
    password_reset_max_per_ip: int = Field(default=20, ge=1, le=100_000)
    password_reset_max_per_email: int = Field(default=5, ge=1, le=1000)
    verification_resend_max: int = Field(default=5, ge=1, le=1000)

    @field_validator("jwt_private_key")
    @classmethod
    def _check_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        pem = _pem(value.get_secret_value())
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("not a readable unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("must be an Ed25519 private key")
        return SecretStr(pem)

    @field_validator("jwt_retired_public_keys")
    @classmethod
    def _check_retired_keys(cls, value: list[str]) -> list[str]:
        keys = []
        for index, raw in enumerate(value):
            pem = _pem(raw)
            try:
                key = serialization.load_pem_public_key(pem.encode())
            except (ValueError, TypeError):
                raise ValueError(f"entry {index} is not a readable PEM public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"entry {index} must be an Ed25519 public key")
            keys.append(pem)
        return keys

    @field_validator("api_token_pepper", "recovery_code_pepper")
    @classmethod
    def _check_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @cached_property
    def api_token_pepper_bytes(self) -> bytes:
        """The pepper's bytes; a random one per process when none is configured (never in production)."""
        if self.api_token_pepper is None:
            return secrets.token_bytes(32)
        return self.api_token_pepper.get_secret_value().encode("utf-8")

    @cached_property
    def recovery_code_pepper_bytes(self) -> bytes:
        """The recovery codes' HMAC key; a random one per process when none is configured (never in production)."""
        if self.recovery_code_pepper is None or is_placeholder(self.recovery_code_pepper.get_secret_value()):
            self.warn_generated_secret(
                "AUTH_RECOVERY_CODE_PEPPER",
                "recovery_code_pepper_ephemeral",
                "recovery codes of two-factor sign-in work only as long as this process",
            )
            return secrets.token_bytes(32)
        return self.recovery_code_pepper.get_secret_value().encode("utf-8")

    @field_validator("public_base_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("keys_url", "usage_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return http_url(value) if value is not None and value.strip() else None

    @model_validator(mode="after")
    def _check_service_clients(self) -> Self:
        # Names only in these messages: client ids and audiences are not secret, the secrets are.
        if AUTH_CLIENT_ID in self.service_clients:
            raise ValueError(f"service_clients: client id {AUTH_CLIENT_ID!r} is reserved for auth's own tokens")
        for client_id, client in sorted(self.service_clients.items()):
            if self.jwt_audience in client.audiences:
                # Service tokens must never be valid where user access tokens are.
                raise ValueError(f"service_clients.{client_id}: audience {self.jwt_audience!r} is for user tokens")
        if self.is_production:
            weak = sorted(c for c, v in self.service_clients.items() if is_placeholder(v.secret.get_secret_value()))
            if weak:
                raise ValueError(f"service_clients: placeholder secret(s) in production for: {', '.join(weak)}")
        return self

    @model_validator(mode="after")
    def _check_floors(self) -> Self:
        if self.environment is not Environment.test and (
            self.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB
            or self.argon2_time_cost < ARGON2_MIN_TIME_COST
            or self.argon2_parallelism < ARGON2_MIN_PARALLELISM
        ):
            raise ValueError(
                "argon2 parameters below OWASP's minimum (m=19456 KiB, t=2, p=1) are allowed only with OWR_ENV=test"
            )
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 * argon2_parallelism")
        if self.login_lockout_max_seconds < self.login_lockout_base_seconds:
            raise ValueError("login_lockout_max_seconds must not be below login_lockout_base_seconds")
        return self
