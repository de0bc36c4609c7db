"""Usage service settings (prefix `USAGE_`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from owr_shared.settings import BaseServiceSettings


class UsageSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USAGE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8003
    forwarded_allow_ips: str = "127.0.0.1"
