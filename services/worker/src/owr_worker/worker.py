"""ARQ worker definition: jobs, cron, and the ctx that holds the process's clients."""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web
from arq import cron
from arq.connections import RedisSettings

from owr_shared.health import HealthChecks
from owr_shared.logging import configure_logging, get_logger
from owr_shared.redis import ping_redis
from owr_worker.health import create_health_app
from owr_worker.instrument import instrumented
from owr_worker.jobs import record_heartbeat
from owr_worker.settings import WorkerSettings as Settings

log = get_logger("owr.worker")


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    health = HealthChecks(timeout=1.0)
    health.add("redis", partial(ping_redis, ctx["redis"]))
    runner = web.AppRunner(create_health_app(health, ctx["redis"], settings.queue_name), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    ctx["health"] = health
    ctx["health_runner"] = runner
    log.info("worker_started", health_port=settings.port)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    health: HealthChecks | None = ctx.get("health")
    if health is not None:
        health.shutting_down = True
    runner: web.AppRunner | None = ctx.get("health_runner")
    if runner is not None:
        await runner.cleanup()


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker`, built from settings (no import-time connections)."""
    return {
        "functions": [],
        "cron_jobs": [cron(instrumented(record_heartbeat), second=0, unique=True, run_at_startup=True)],  # type: ignore[arg-type]
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "max_jobs": settings.max_jobs,
        "job_timeout": settings.job_timeout_seconds,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "ctx": {"settings": settings},
        "handle_signals": True,
    }


def main(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM; arq lets running jobs finish first."""
    from arq.worker import Worker

    configure_logging("worker", settings.log_level, json=settings.log_json)
    Worker(**worker_settings(settings)).run()
