"""Usage service settings: `USAGE_*` variables on top of the shared infrastructure ones."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import JwksServiceSettings, NonEmptyText, Port


class UsageSettings(JwksServiceSettings):
    """Configuration of the usage service (`USAGE_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="USAGE_", env_file=None, extra="ignore", frozen=True)

    port: Port = 8003
    internal_audience: NonEmptyText = "owr-usage"

    # Days of history kept and served: reads reach no further back, and retention never deletes inside it.
    retention_days: int = Field(default=400, ge=31, le=3660)
    # Hours of full snapshot history (every sync); older UTC days keep each key's first and last snapshot
    # of the day, which is all the daily derivation and the audit of a figure read.
    snapshot_full_hours: int = Field(default=48, ge=24, le=24 * 400)
