"""Worker metrics: jobs, queue depth, heartbeat, calls to OpenRouter, the circuit, sync outcomes, alert deliveries."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from owr_shared.metrics import LATENCY_BUCKETS

JOBS = Counter("owr_jobs_total", "Jobs finished, by job and outcome.", ["job", "outcome"])
JOB_DURATION = Histogram(
    "owr_job_duration_seconds",
    "Time a job ran, by job.",
    ["job"],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 120.0),
)
QUEUE_DEPTH = Gauge("owr_queue_depth", "Jobs waiting in the ARQ queue.", ["queue"])
REDIS_UP = Gauge("owr_worker_redis_up", "1 while the worker's poll loop reaches Redis, 0 during an outage.")
HEARTBEAT = Gauge("owr_worker_heartbeat_timestamp_seconds", "Unix time of the worker's last cron heartbeat.")

# endpoint is the path template (`/key`, `/keys`, `/activity`, `/credits`); status is the HTTP code,
# `timeout` or `error` (connection refused, reset, unreadable body). Never a key or a hash.
OPENROUTER_REQUESTS = Counter(
    "owr_openrouter_requests_total", "Requests sent to OpenRouter, by endpoint and status.", ["endpoint", "status"]
)
OPENROUTER_DURATION = Histogram(
    "owr_openrouter_request_duration_seconds",
    "Time of one request to OpenRouter, by endpoint.",
    ["endpoint"],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0),
)
LIMITER_WAIT = Histogram(
    "owr_openrouter_limiter_wait_seconds",
    "Time a request waited for its slot in the shared OpenRouter rate limit.",
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CIRCUIT_OPEN = Gauge(
    "owr_openrouter_circuit_open", "1 while the OpenRouter circuit breaker is open or half-open, else 0."
)
# Items per call of the internal batch endpoints (call: reveal, status, snapshots).
BATCH_SIZE = Histogram(
    "owr_internal_batch_items",
    "Items sent in one call of an internal batch endpoint, by call.",
    ["call"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
DUE_SCANS_BACKLOG_FULL = Counter(
    "owr_due_scans_backlog_full_total",
    "Due scans that stopped because the queue held WORKER_DUE_BACKLOG_SECONDS of the OpenRouter budget, by scan.",
    ["scan"],
)
WORKSPACE_SWEEPS = Counter(
    "owr_workspace_sweeps_total",
    "Hourly workspace sweeps (auth finishing interrupted account deletions, erasing orphans), by outcome.",
    ["outcome"],
)
# auth's emails (verification, password reset, invitation): sent, retry (deferred), failed (given up),
# dropped (auth no longer wanted it).
AUTH_MAILS = Counter("owr_worker_auth_mails_total", "send_auth_mail jobs' outcomes.", ["outcome"])
KEYS_SYNCED = Counter("owr_keys_synced_total", "Key syncs finished, by the status reported.", ["outcome"])

# Alert deliveries (`deliveries.py`): channel_type is webhook, slack, discord or email; outcome delivered, failed or
# gone (a 410). The outbox gauges are usage's figures at the last claim, shared through Redis so every worker
# exports the same value; the oldest due delivery's age keeps growing from there while no claim refreshes it.
ALERT_DELIVERIES = Counter(
    "owr_worker_alert_deliveries_total",
    "Alert delivery attempts, by channel type and outcome.",
    ["channel_type", "outcome"],
)
ALERT_DELIVERY_DURATION = Histogram(
    "owr_worker_alert_delivery_duration_seconds",
    "Time of one alert delivery attempt (the request or the SMTP session), by channel type.",
    ["channel_type"],
    buckets=(*LATENCY_BUCKETS, 30.0),
)
ALERT_OUTBOX_DEPTH = Gauge(
    "owr_worker_alert_outbox_depth", "Alert deliveries pending in usage's outbox (due or later)."
)
ALERT_OUTBOX_OLDEST_DUE = Gauge(
    "owr_worker_alert_outbox_oldest_due_seconds", "How long the oldest due alert delivery has waited (0: none is due)."
)

# Every outcome exported from the start, so rate() and alerts see 0 rather than no series.
for _outcome in ("valid", "invalid", "error"):
    KEYS_SYNCED.labels(_outcome)
for _scan in ("schedule_due_keys", "validate_keys"):
    DUE_SCANS_BACKLOG_FULL.labels(_scan)
for _outcome in ("done", "unavailable", "refused"):
    WORKSPACE_SWEEPS.labels(_outcome)
for _channel_type in ("webhook", "slack", "discord", "email"):
    ALERT_DELIVERY_DURATION.labels(_channel_type)
    for _outcome in ("delivered", "failed", "gone"):
        ALERT_DELIVERIES.labels(_channel_type, _outcome)
for _outcome in ("sent", "retry", "failed", "dropped"):
    AUTH_MAILS.labels(_outcome)
