"""Settings read from the environment with pydantic-settings.

Infrastructure variables (`DATABASE_URL`, `REDIS_URL`, `OWR_ENV`, `LOG_LEVEL`) are shared by every
process; everything else carries its service's prefix (`AUTH_`, `GATEWAY_`, ...).  Secrets are
declared with :func:`secret_field`; in production a missing or placeholder secret refuses to start.
"""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from owr_shared.logging import get_logger

# Phrases a template leaves behind; long and specific enough never to occur inside random key material.
PLACEHOLDER_PHRASES = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder")
# Words that are obviously not secrets when they stand as a word of the value ("example-key", "abc-example").
# Matched only as whole words, because a short marker such as "xxx" turns up inside random base64 keys.
PLACEHOLDER_WORDS = frozenset({"example", "dev", "insecure", "xxx", "secret", "password", "todo", "test"})
_WORD_SEPARATORS = re.compile(r"[-_ .:]+")
# Six letters or more between separators: a chance of about 1e-12 per position in random base64.
_LONG_PLACEHOLDER_WORDS = frozenset(word for word in PLACEHOLDER_WORDS if len(word) >= 6)


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


def secret_field(description: str, default: SecretStr | None = None) -> Any:
    """A settings field holding a secret: validated in production, never logged."""
    return Field(default=default, description=description, json_schema_extra={"secret": True})


def _looks_generated(value: str) -> bool:
    """Long, mixed-case, with digits and many distinct characters: what a key generator prints, not a phrase."""
    return (
        len(value) >= 32
        and len(set(value)) >= 20
        and any(c.isdigit() for c in value)
        and any(c.islower() for c in value)
        and any(c.isupper() for c in value)
    )


def is_placeholder(value: str) -> bool:
    """An empty value, a template phrase, a value of one repeated character, or one with a stand-in word.

    In generated key material only the long stand-in words count (`generated-key-example`): url-safe
    base64 has `-` and `_`, so about one random key in 10,000 holds a segment such as `dev` or `xxx`.
    """
    stripped = value.strip()
    lowered = stripped.lower()
    words = _LONG_PLACEHOLDER_WORDS if _looks_generated(stripped) else PLACEHOLDER_WORDS
    return (
        not lowered
        or any(phrase in lowered for phrase in PLACEHOLDER_PHRASES)
        or (len(lowered) >= 8 and len(set(lowered)) <= 2)  # "xxxxxxxx", "00000000": no entropy at all
        or not words.isdisjoint(_WORD_SEPARATORS.split(lowered))
    )


class BaseServiceSettings(BaseSettings):
    """Fields every process shares. Subclasses set `env_prefix` for their own fields."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Environment = Field(default=Environment.production, validation_alias="OWR_ENV")
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/postgres", validation_alias="DATABASE_URL")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="LOG_JSON")
    db_pool_size: int = Field(default=10, ge=1, le=200, validation_alias="DB_POOL_SIZE")
    # Per service (`<PREFIX>DB_...`): how long a request waits for a pooled connection before it is shed
    # with a 503, and the server-side bounds of each statement and of a transaction left idle (seconds;
    # 0 turns a server-side bound off). A service whose reads are longer overrides the defaults.
    db_pool_timeout: float = Field(default=2.0, gt=0, le=30)
    # How long to wait for PostgreSQL to accept a connection, or a pooled one to answer its check.
    db_connect_timeout: float = Field(default=1.0, gt=0, le=60)
    db_statement_timeout: float = Field(default=5.0, ge=0, le=3600)
    db_idle_in_transaction_timeout: float = Field(default=30.0, ge=0, le=3600)

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    def warn_generated_secret(self, variable: str, event: str, consequence: str) -> None:
        """`variable` is unset, so the caller generates one at start: say so, and never in production (the
        validator already refuses an unset secret there; this keeps a throwaway key out if it ever did not)."""
        if self.is_production:
            raise RuntimeError(f"{variable} is required in production")
        get_logger("owr.settings").warning(event, detail=f"{variable} is unset: {consequence}")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets_in_production(self) -> Self:
        if not self.is_production:
            return self
        bad = []
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            if not (isinstance(extra, dict) and extra.get("secret")):
                continue
            value = getattr(self, name)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw is None or (isinstance(raw, str) and is_placeholder(raw)):
                bad.append(name)
        if bad:
            # Names only: the values themselves must never reach an error message.
            raise ValueError(f"missing or placeholder secret(s) in production: {', '.join(sorted(bad))}")
        return self


Port = Annotated[int, Field(ge=1, le=65535)]
NonEmptyText = Annotated[str, Field(min_length=1)]


class HttpServiceSettings(BaseServiceSettings):
    """An HTTP service: the address `owr_shared.serve.run_service` listens on, and the access tokens it takes.

    Subclasses give `port` and `admin_port` their own defaults (`port: Port = 8002`).
    """

    host: str = "127.0.0.1"
    port: Port = 8000
    # `/metrics` and the health probes (owr_shared.admin): the port monitoring is admitted to, never the API's.
    admin_port: Port = 9000
    # Peers whose X-Forwarded-For uvicorn trusts (the gateway's address or subnet); never `*` in production.
    forwarded_allow_ips: str = "127.0.0.1"

    jwt_issuer: NonEmptyText = "owr-auth"
    jwt_audience: NonEmptyText = "owr-api"

    @model_validator(mode="after")
    def _check_ports_and_forwarders(self) -> Self:
        if self.admin_port == self.port:
            raise ValueError("admin_port must differ from port: monitoring must not reach the API")
        trusted = {ip.strip() for ip in self.forwarded_allow_ips.split(",")}
        if self.is_production and "*" in trusted:
            raise ValueError("forwarded_allow_ips may not be '*' in production: name the gateway's address or subnet")
        return self


class JwksServiceSettings(HttpServiceSettings):
    """A service that verifies auth's tokens against auth's JWKS: users' (`jwt_audience`), and service
    tokens for its own `internal_audience` (subclasses give it a default: `internal_audience: NonEmptyText
    = "owr-keys"`)."""

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    internal_audience: NonEmptyText


def http_url(value: str) -> str:
    """A base URL without its trailing slash; ValueError unless it is http:// or https://."""
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


SettingsT = TypeVar("SettingsT", bound=BaseServiceSettings)


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Build settings or exit with a message that names the fields but never echoes their values."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            lines.append(f"  - {where}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as exc:
        # Raised for unparsable JSON in a complex field; its message names the field, not the value.
        print(f"invalid configuration for {cls.__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
