"""The worker's HTTP side on port 8004: `/health/live`, `/health/ready`, `/metrics` (aiohttp)."""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from owr_shared.health import HealthChecks
from owr_worker.deliveries import export_backlog
from owr_worker.metrics import QUEUE_DEPTH


def create_health_app(health: HealthChecks, redis: Any, queue_name: str) -> web.Application:
    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_request: web.Request) -> web.Response:
        ok, report = await health.run()
        return web.json_response({"status": "ok" if ok else "unavailable", "checks": report}, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        # A scrape must still answer while Redis is away; the gauge keeps its last value.
        with contextlib.suppress(Exception):
            QUEUE_DEPTH.labels(queue_name).set(await redis.zcard(queue_name))
        with contextlib.suppress(Exception):
            await export_backlog(redis)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
