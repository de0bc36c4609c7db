"""Usage service settings: `USAGE_*` variables on top of the shared infrastructure ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import BaseServiceSettings


class UsageSettings(BaseServiceSettings):
    """Configuration of the usage service (`USAGE_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="USAGE_", env_file=None, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    forwarded_allow_ips: str = "127.0.0.1"

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = Field(default="owr-auth", min_length=1)
    jwt_audience: str = Field(default="owr-api", min_length=1)
    internal_audience: str = Field(default="owr-usage", min_length=1)

    # Days of history kept and served: reads reach no further back, and retention never deletes inside it.
    retention_days: int = Field(default=400, ge=31, le=3660)
