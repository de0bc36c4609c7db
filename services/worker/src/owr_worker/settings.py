"""Worker settings (prefix `WORKER_`; `OPENROUTER_BASE_URL` is shared and unprefixed)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from owr_shared.settings import BaseServiceSettings, http_url, is_placeholder, secret_field
from owr_shared.wire.alerts import CLAIM_MAX
from owr_shared.wire.key_actions import LEASE_MAX_SECONDS
from owr_worker.mail import BadSmtpUrl, parse_smtp_url

# A key action's lease beyond the job timeout: the claim's and the report's calls to usage.
KEY_ACTION_LEASE_MARGIN_SECONDS = 30


class WorkerSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", extra="ignore", frozen=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8004, description="health and metrics")
    max_jobs: int = Field(default=20, ge=1, le=1000)
    job_timeout_seconds: int = Field(default=120, ge=1)
    queue_name: str = "arq:queue"
    # How often an idle worker looks at the queue: bounds the wait of a job queued on a quiet system (a new
    # key's first sync); one cheap Redis read per poll.
    poll_delay_seconds: float = Field(default=0.1, gt=0, le=5)
    # A Redis outage: each call to Redis is bounded (a frozen server must not hang the poll loop), and the
    # loop tries again with full-jitter backoff up to the cap, which bounds the wait after Redis is back.
    redis_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    redis_retry_base_seconds: float = Field(default=0.2, gt=0, le=60)
    redis_retry_cap_seconds: float = Field(default=5.0, gt=0, le=300)

    # The internal APIs the worker calls, and the client credentials it gets service tokens with.
    auth_url: str = "http://127.0.0.1:8001"
    keys_url: str = "http://127.0.0.1:8002"
    usage_url: str = "http://127.0.0.1:8003"
    service_client_id: str = Field(default="worker", min_length=1, max_length=64)
    service_client_secret: SecretStr | None = secret_field("client secret registered in AUTH_SERVICE_CLIENTS")
    internal_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    # OpenRouter. The base URL comes from configuration only: no user-supplied URL is ever fetched.
    openrouter_base_url: str = Field(default="https://openrouter.ai/api/v1", validation_alias="OPENROUTER_BASE_URL")
    openrouter_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # One budget for every worker process together (a Redis limiter); burst lets a quiet limiter start fast.
    openrouter_max_rps: float = Field(default=20.0, gt=0, le=10_000)
    openrouter_burst: int = Field(default=5, ge=1, le=10_000)
    # Retries of one request inside a job (429, 5xx, timeouts): full-jitter exponential backoff.
    openrouter_retry_attempts: int = Field(default=3, ge=1, le=10)
    openrouter_retry_base_seconds: float = Field(default=0.5, gt=0, le=60)
    openrouter_retry_cap_seconds: float = Field(default=10.0, gt=0, le=300)
    # When a request's retries are spent, the job itself is deferred (arq Retry) this many times in all.
    job_max_tries: int = Field(default=5, ge=1, le=50)
    job_retry_base_seconds: float = Field(default=15.0, gt=0, le=3600)
    job_retry_cap_seconds: float = Field(default=600.0, gt=0, le=86_400)
    # Circuit breaker shared by every worker process.
    circuit_failure_threshold: int = Field(default=5, ge=1, le=1000)
    circuit_open_seconds: float = Field(default=60.0, gt=0, le=3600)

    # Activity: the window OpenRouter keeps (30 completed UTC days), fetched once per UTC day per account.
    activity_backfill_days: int = Field(default=30, ge=1, le=30)
    retention_days: int = Field(default=400, ge=31, le=36_500)
    # The daily snapshot compaction: how many days back it looks, and how many keys one call of usage takes.
    compaction_lookback_days: int = Field(default=7, ge=3, le=36_500)
    compaction_batch_keys: int = Field(default=1000, ge=1, le=10_000)
    # Per-key lock; longer than a job may run, so a crashed worker's lock frees itself.
    lock_ttl_seconds: int = Field(default=300, ge=5, le=86_400)
    # Keys per page of the due scan; a scan takes pages until a short one, or until the queue holds this many
    # seconds of the OpenRouter budget (openrouter_max_rps x due_backlog_seconds jobs): the keys left wait
    # for the next minute's scan, which ranks them fairly again, rather than behind a long queue.
    due_page_size: int = Field(default=1000, ge=1, le=1000)
    due_backlog_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Group commit of reveals, status reports and snapshots: a batch goes when it holds batch_max_items, or
    # batch_max_wait_ms after its first item when no call of the same kind is under way (else when one ends).
    batch_max_items: int = Field(default=200, ge=1, le=500)
    batch_max_wait_ms: float = Field(default=25.0, ge=0, le=1000)
    batch_max_in_flight: int = Field(default=1, ge=1, le=64)

    # Deliveries to user-given URLs (webhooks, Slack, Discord): public https addresses only in production;
    # these hosts (exact names, lower case) may resolve to private addresses (an operator's own receivers).
    outbound_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Alert deliveries (`deliveries.py`): one delivery job at a time across the workers, sending at most this many
    # at once, each bounded by the outbound timeout; the poll enqueues it at every multiple of poll_seconds of each
    # minute, and a full batch enqueues the next one at once. Together: one of max_jobs' slots, for a bounded time.
    delivery_concurrency: int = Field(default=8, ge=1, le=100)
    delivery_poll_seconds: int = Field(default=5, ge=1, le=60)
    delivery_batch: int = Field(default=32, ge=1, le=CLAIM_MAX)
    # Email (alerts, reports): `smtp://[user:pass@]host:port[?starttls=true]` or `smtps://...`; unset: no email.
    # Unprefixed, as DESIGN §11 names them: the process that sends reads them.
    smtp_url: SecretStr | None = Field(default=None, validation_alias="SMTP_URL")
    mail_from: str = Field(default="OpenRouter Watcher <watcher@localhost>", validation_alias="MAIL_FROM")

    @field_validator("smtp_url", mode="before")
    @classmethod
    def _blank_smtp_is_unset(cls, value: object) -> object:
        # Compose passes `SMTP_URL: ${SMTP_URL:-}`: an empty value means no mail server.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("outbound_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower().rstrip(".") for host in value.split(",") if host.strip()]
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # unset (or set empty): no email
        try:
            parse_smtp_url(value.get_secret_value())
        except BadSmtpUrl as exc:
            raise ValueError(str(exc)) from None  # the message never carries the URL
        return value

    @field_validator("auth_url", "keys_url", "usage_url", "openrouter_base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return http_url(value)

    @model_validator(mode="after")
    def _no_placeholder_smtp_password(self) -> Self:
        # Optional, so not a `secret_field` (those are required in production); but a template's placeholder
        # password left in it refuses to start, as a placeholder secret does.
        if self.is_production and self.smtp_url is not None:
            password = parse_smtp_url(self.smtp_url.get_secret_value()).password
            if password is not None and is_placeholder(password):
                raise ValueError("SMTP_URL holds a placeholder password: set the real one, or unset SMTP_URL")
        return self

    @property
    def key_action_lease_seconds(self) -> int:
        """A key action's claim: longer than its job may run (arq cuts a try at the job timeout), so a try never
        acts after another claim took the action."""
        return self.job_timeout_seconds + KEY_ACTION_LEASE_MARGIN_SECONDS

    @model_validator(mode="after")
    def _key_action_lease_fits(self) -> Self:
        if not 10 <= self.key_action_lease_seconds <= LEASE_MAX_SECONDS:
            raise ValueError(
                f"job_timeout_seconds must be at most {LEASE_MAX_SECONDS - KEY_ACTION_LEASE_MARGIN_SECONDS}: a key "
                "action's claim is leased for it and a margin"
            )
        return self

    @model_validator(mode="after")
    def _lock_outlives_job(self) -> Self:
        if self.lock_ttl_seconds <= self.job_timeout_seconds:
            raise ValueError("lock_ttl_seconds must be longer than job_timeout_seconds")
        return self
