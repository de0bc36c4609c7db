"""Auth service settings: `AUTH_*` variables on top of the shared infrastructure ones.

Argon2 parameters have OWASP's minimum (m=19 MiB, t=2, p=1) as a floor. Only `OWR_ENV=test` may go
below it, so the test suite does not spend seconds hashing; every other environment refuses to start.
"""

from __future__ import annotations

from typing import Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import BaseServiceSettings, Environment, secret_field

# OWASP Password Storage Cheat Sheet, argon2id minimum configuration.
ARGON2_MIN_MEMORY_KIB = 19456
ARGON2_MIN_TIME_COST = 2
ARGON2_MIN_PARALLELISM = 1
ACCESS_TOKEN_MAX_TTL_SECONDS = 15 * 60


def _pem(value: str) -> str:
    # Env files and some secret stores flatten newlines to a literal "\n"; accept both forms.
    return value.replace("\\n", "\n").strip() + "\n"


class AuthSettings(BaseServiceSettings):
    """Configuration of the auth service (`AUTH_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", env_file=None, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    forwarded_allow_ips: str = "127.0.0.1"

    jwt_issuer: str = Field(default="owr-auth", min_length=1)
    jwt_audience: str = Field(default="owr-api", min_length=1)
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
