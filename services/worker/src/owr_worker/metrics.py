"""Worker metrics: jobs by name and outcome, their durations, queue depth, cron heartbeat."""

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
HEARTBEAT = Gauge("owr_worker_heartbeat_timestamp_seconds", "Unix time of the worker's last cron heartbeat.")
