"""Worker settings (prefix `WORKER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import BaseServiceSettings


class WorkerSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8004, description="health and metrics")
    max_jobs: int = Field(default=20, ge=1, le=1000)
    job_timeout_seconds: int = Field(default=120, ge=1)
    queue_name: str = "arq:queue"
