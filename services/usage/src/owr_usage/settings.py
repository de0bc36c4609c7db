"""Usage service settings: `USAGE_*` variables on top of the shared infrastructure ones.

`USAGE_KEKS` / `USAGE_ACTIVE_KEK_VERSION` seal the alert channels' targets and signing secrets, in the same
format and under the same rules as keys' `KEYS_KEKS` (`owr_shared.envelope.KekServiceSettings`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from owr_shared.envelope import KekServiceSettings
from owr_shared.settings import NonEmptyText, Port, http_url
from owr_usage.deliveries.schedule import BACKOFF_SECONDS, MAX_RETRIES, MAX_WAIT_SECONDS


def _seconds_list(value: Any) -> Any:
    """`5,300,1800` (the environment's form) as a tuple; anything else is left to the type."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


RetrySchedule = Annotated[
    tuple[Annotated[float, Field(gt=0, le=MAX_WAIT_SECONDS)], ...],
    NoDecode,
    BeforeValidator(_seconds_list),
    Field(min_length=1, max_length=MAX_RETRIES),
]


class UsageSettings(KekServiceSettings):
    """Configuration of the usage service (`USAGE_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="USAGE_", env_file=None, extra="ignore", frozen=True)

    port: Port = 8003
    admin_port: Port = 9003
    internal_audience: NonEmptyText = "owr-usage"

    # Reports are the service's long reads (a year's summary, a deep sorted page, an export's batches), and an
    # export's transaction idles while a slow client reads: both bounds are longer than the other services'.
    db_statement_timeout: float = Field(default=15.0, ge=0, le=3600)
    db_idle_in_transaction_timeout: float = Field(default=60.0, ge=0, le=3600)
    # The expensive reads: summaries and exports one workspace may run at once in a process (the next is a
    # 429), and the exports the process streams at once, each on a connection of their own pool (the next
    # waits up to `db_pool_timeout` for a slot, then is a 503).
    summary_concurrency_per_workspace: int = Field(default=4, ge=1, le=1000)
    export_concurrency_per_workspace: int = Field(default=2, ge=1, le=1000)
    export_concurrency: int = Field(default=4, ge=1, le=200)

    # Days of history kept and served: reads reach no further back, and retention never deletes inside it.
    retention_days: int = Field(default=400, ge=31, le=3660)
    # Hours of full snapshot history (every sync); older UTC days keep each key's first and last snapshot
    # of the day, which is all the daily derivation and the audit of a figure read.
    snapshot_full_hours: int = Field(default=48, ge=24, le=24 * 400)

    # Alert channels one workspace may have (disabled ones count): an event fans out to each of them.
    max_channels_per_workspace: int = Field(default=50, ge=1, le=1000)
    # Test events and retried deliveries one channel may be sent in a minute (`POST /api/v1/channels/{id}/test`,
    # `.../deliveries/{id}/retry`; the next is a 429), and all of one workspace's channels together.
    channel_tests_per_minute: int = Field(default=5, ge=1, le=1000)
    workspace_channel_tests_per_minute: int = Field(default=20, ge=1, le=10000)
    # Confirmation emails (double opt-in) one channel, and one address whichever workspace asks, may be sent in a
    # day (creating, re-addressing or resending; the next is a 429): they go to addresses nobody confirmed.
    confirmations_per_day: int = Field(default=3, ge=1, le=100_000)
    # Where the web app answers, through the gateway (auth's `PUBLIC_BASE_URL`): an email channel's confirmation
    # link is `{PUBLIC_BASE_URL}/confirm-email-channel?token=...`.
    public_base_url: str = Field(
        default="http://localhost:8000",
        validation_alias=AliasChoices("USAGE_PUBLIC_BASE_URL", "PUBLIC_BASE_URL", "public_base_url"),
    )
    # The worker's ARQ queue, nudged after a commit that raised alert events (the worker's WORKER_QUEUE_NAME).
    queue_name: str = Field(default="arq:queue", min_length=1)
    # The waits (seconds) before each retry of a failed alert delivery, e.g. `5,300,1800`; one more failure after
    # the last fails the delivery. Default: `owr_usage.deliveries.schedule.BACKOFF_SECONDS`.
    delivery_retry_seconds: RetrySchedule = tuple(float(s) for s in BACKOFF_SECONDS)

    @field_validator("public_base_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")
