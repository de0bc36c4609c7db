"""ARQ worker definition: jobs, cron, and the ctx that holds the process's clients."""

from __future__ import annotations

from datetime import UTC
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from arq import cron
from arq.connections import RedisSettings
from arq.worker import func

from owr_shared.health import HealthChecks, begin_drain
from owr_shared.logging import configure_logging, get_logger
from owr_shared.redis import ping_redis
from owr_shared.wire.key_actions import MANAGE_KEY_UPSTREAM_JOB
from owr_shared.wire.mail import SEND_AUTH_MAIL_JOB
from owr_worker.alerts_client import AlertsClient
from owr_worker.auth_mail import AuthMailClient, requeue_auth_mail, send_auth_mail
from owr_worker.batching import BatchPolicy
from owr_worker.circuit import CircuitBreaker
from owr_worker.crons import (
    cleanup_usage,
    compact_snapshots,
    monthly_digests,
    price_drift,
    record_heartbeat,
    schedule_due_keys,
    validate_keys,
    weekly_digests,
)
from owr_worker.deliveries import DELIVER_ALERTS, deliver_alerts, poll_alert_deliveries
from owr_worker.health import create_health_app
from owr_worker.instrument import instrumented
from owr_worker.internal import KeysClient, ServiceTokens, UsageClient
from owr_worker.jobs import SYNC_ACCOUNT, SYNC_KEY, sync_account, sync_key
from owr_worker.key_actions import manage_key_upstream, sweep_key_actions
from owr_worker.key_actions_client import KeyActionsClient, UpstreamAuditClient
from owr_worker.mail import parse_smtp_url
from owr_worker.openrouter import OpenRouterClient, RetryPolicy
from owr_worker.outage import RedisOutage, ResilientWorker
from owr_worker.outbound import Outbound
from owr_worker.ratelimit import RateLimiter
from owr_worker.senders import Senders
from owr_worker.settings import WorkerSettings as Settings
from owr_worker.sweep import sweep_workspaces

log = get_logger("owr.worker")


def build_clients(ctx: dict[str, Any]) -> None:
    """Put the process's HTTP sessions and API clients in ctx (from `settings` and `redis` already there)."""
    settings: Settings = ctx["settings"]
    redis = ctx["redis"]
    # Two sessions: OpenRouter's pool is sized for the job concurrency; internal calls must not queue behind it.
    openrouter_http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.max_jobs + 5), raise_for_status=False
    )
    internal_http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.max_jobs * 2 + 5), raise_for_status=False
    )
    secret = settings.service_client_secret.get_secret_value() if settings.service_client_secret else ""
    tokens = ServiceTokens(
        internal_http,
        settings.auth_url,
        client_id=settings.service_client_id,
        client_secret=secret,
        timeout_seconds=settings.internal_timeout_seconds,
    )
    ctx["openrouter_http"] = openrouter_http
    ctx["internal_http"] = internal_http
    ctx["openrouter"] = OpenRouterClient(
        openrouter_http,
        settings.openrouter_base_url,
        timeout_seconds=settings.openrouter_timeout_seconds,
        limiter=RateLimiter(redis, rate=settings.openrouter_max_rps, burst=settings.openrouter_burst),
        circuit=CircuitBreaker(
            redis,
            threshold=settings.circuit_failure_threshold,
            open_seconds=settings.circuit_open_seconds,
            probe_ttl_seconds=settings.openrouter_timeout_seconds * 2,
        ),
        retry=RetryPolicy(
            attempts=settings.openrouter_retry_attempts,
            base_seconds=settings.openrouter_retry_base_seconds,
            cap_seconds=settings.openrouter_retry_cap_seconds,
        ),
    )
    timeout = settings.internal_timeout_seconds
    batch = BatchPolicy(
        max_items=settings.batch_max_items,
        max_wait_seconds=settings.batch_max_wait_ms / 1000,
        max_in_flight=settings.batch_max_in_flight,
    )
    # keys and usage own the batchers of their calls; close_clients sends what they still hold.
    ctx["keys"] = KeysClient(internal_http, settings.keys_url, tokens, timeout_seconds=timeout, batch=batch)
    ctx["usage"] = UsageClient(internal_http, settings.usage_url, tokens, timeout_seconds=timeout, batch=batch)
    ctx["alerts"] = AlertsClient(internal_http, settings.usage_url, tokens, timeout_seconds=timeout)
    ctx["key_actions"] = KeyActionsClient(internal_http, settings.usage_url, tokens, timeout_seconds=timeout)
    ctx["upstream_audit"] = UpstreamAuditClient(internal_http, settings.keys_url, tokens, timeout_seconds=timeout)
    ctx["auth_mail"] = AuthMailClient.from_settings(internal_http, settings)
    # One mail server for every email the worker sends: alerts (`senders`) and auth's (`auth_mail.py`).
    smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
    ctx["smtp"] = smtp = parse_smtp_url(smtp_url) if smtp_url else None
    ctx["senders"] = Senders(
        Outbound(settings),
        smtp=smtp,
        mail_from=settings.mail_from,
        timeout_seconds=settings.outbound_timeout_seconds,
    )


async def close_clients(ctx: dict[str, Any]) -> None:
    # First the batchers (their last calls need the sessions), then the sessions.
    for name in ("keys", "usage", "alerts", "key_actions", "upstream_audit"):
        client: KeysClient | UsageClient | AlertsClient | KeyActionsClient | UpstreamAuditClient | None = ctx.pop(
            name, None
        )
        if client is not None:
            await client.aclose()
    for name in ("openrouter_http", "internal_http"):
        session: aiohttp.ClientSession | None = ctx.pop(name, None)
        if session is not None:
            await session.close()


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    build_clients(ctx)
    health = HealthChecks(timeout=1.0)
    health.add("redis", partial(ping_redis, ctx["redis"]))
    outage: RedisOutage | None = ctx.get("redis_outage")
    if outage is not None:
        health.add("queue", outage.check)
    runner = web.AppRunner(create_health_app(health, ctx["redis"], settings.queue_name), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    ctx["health"] = health
    ctx["health_runner"] = runner
    # Whether email can go out: an email channel's deliveries fail (and say why) while it cannot.
    log.info("worker_started", health_port=settings.port, email=settings.smtp_url is not None)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    health: HealthChecks | None = ctx.get("health")
    if health is not None:
        health.shutting_down = True
    runner: web.AppRunner | None = ctx.get("health_runner")
    if runner is not None:
        await runner.cleanup()
    await close_clients(ctx)


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`, built from settings (no import-time connections)."""
    # keep_result=0: keys enqueues sync_key with `_job_id=sync_key:{id}`; a stored result would block the
    # next enqueue of that id for as long as it is kept. Tries: the jobs give up (and report) at
    # job_max_tries themselves; arq's bound is one above so it never cuts them short.
    tries = settings.job_max_tries + 1
    return {
        "functions": [
            func(instrumented(sync_key), name=SYNC_KEY, keep_result=0, max_tries=tries),  # type: ignore[arg-type]
            func(instrumented(sync_account), name=SYNC_ACCOUNT, keep_result=0, max_tries=tries),  # type: ignore[arg-type]
            # One try: a run cut short (a shutdown) is not run again; the next poll queues a fresh one.
            func(instrumented(deliver_alerts), name=DELIVER_ALERTS, keep_result=0, max_tries=1),  # type: ignore[arg-type]
            func(instrumented(send_auth_mail), name=SEND_AUTH_MAIL_JOB, keep_result=0, max_tries=tries),  # type: ignore[arg-type]
            # usage queues it after the commit that recorded a key action (`_job_id=manage_key_upstream:{id}`).
            func(instrumented(manage_key_upstream), name=MANAGE_KEY_UPSTREAM_JOB, keep_result=0, max_tries=tries),  # type: ignore[arg-type]
        ],
        "cron_jobs": [
            cron(instrumented(record_heartbeat), second=0, unique=True, run_at_startup=True),  # type: ignore[arg-type]
            # Not unique: every worker scans, and keys' leases split the due keys among the scans.
            cron(instrumented(schedule_due_keys), second=5, unique=False, run_at_startup=True),  # type: ignore[arg-type]
            cron(instrumented(validate_keys), hour=3, minute=17, second=30, unique=True),  # type: ignore[arg-type]
            cron(
                instrumented(compact_snapshots),  # type: ignore[arg-type]
                hour=2,
                minute=37,
                second=0,
                unique=True,
                max_tries=3,
            ),
            # Queues deliver_alerts under its fixed job id: a tick while a batch is queued or running adds nothing.
            cron(
                instrumented(poll_alert_deliveries),  # type: ignore[arg-type]
                second=set(range(0, 60, settings.delivery_poll_seconds)),
                unique=True,
                run_at_startup=True,
            ),
            cron(instrumented(weekly_digests), weekday="mon", hour=0, minute=5, second=0, unique=True, max_tries=3),  # type: ignore[arg-type]
            cron(instrumented(monthly_digests), day=1, hour=0, minute=5, second=0, unique=True, max_tries=3),  # type: ignore[arg-type]
            cron(instrumented(price_drift), hour=6, minute=25, second=0, unique=True, max_tries=3),  # type: ignore[arg-type]
            # auth's emails whose job was lost (Redis away when auth queued it) go out within minutes.
            cron(
                instrumented(requeue_auth_mail),  # type: ignore[arg-type]
                minute=set(range(0, 60, 5)),
                second=40,
                unique=True,
            ),
            # Key actions whose job was lost are queued again within a minute or two.
            cron(instrumented(sweep_key_actions), second=50, unique=True),  # type: ignore[arg-type]
            # Hourly, so an account deletion a peer could not finish completes within the hour.
            cron(instrumented(sweep_workspaces), minute=23, second=15, unique=True),  # type: ignore[arg-type]
            cron(
                instrumented(cleanup_usage),  # type: ignore[arg-type]
                weekday="sun",
                hour=4,
                minute=43,
                second=0,
                unique=True,
                max_tries=3,
            ),
        ],
        # Crons read UTC times, like every day and window in this system.
        "timezone": UTC,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "max_jobs": settings.max_jobs,
        "poll_delay": settings.poll_delay_seconds,
        "job_timeout": settings.job_timeout_seconds,
        # On SIGTERM: stop taking jobs, let running ones finish (a job may run job_timeout), cancel what is
        # left after that; a cancelled job stays queued and runs again elsewhere.
        "job_completion_wait": settings.job_timeout_seconds + 5,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "ctx": {"settings": settings, "redis_outage": RedisOutage.from_settings(settings)},
        "handle_signals": True,
    }


def main(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM; running jobs finish first, readiness fails at the signal. A Redis
    outage never ends it (`owr_worker.outage`)."""

    class DrainingWorker(ResilientWorker):
        def handle_sig_wait_for_completion(self, signum: Any) -> None:
            # Readiness turns 503 at the first signal, while the running jobs still finish.
            begin_drain()
            super().handle_sig_wait_for_completion(signum)

    configure_logging("worker", settings.log_level, json=settings.log_json)
    DrainingWorker(**worker_settings(settings)).run()
