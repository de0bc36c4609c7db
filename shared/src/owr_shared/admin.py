"""The admin port of an HTTP service (as the gateway's): `/metrics` and the health probes, nothing else.

One process listens on both ports (`owr_shared.serve`); a request is told apart by the local port it
arrived on (the ASGI `server` of its connection, which no header can change). Monitoring is admitted
to the admin port only, so the API port never serves `/metrics`, and the admin port never serves the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from owr_shared.health import readiness_response
from owr_shared.metrics import metrics_endpoint

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, str]]]]


def create_admin_app(readiness: Readiness) -> Starlette:
    """`/metrics`, `/health/live`, `/health/ready` (from `readiness`); the gateway's admin app is one too."""

    async def live(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> JSONResponse:
        ok, report = await readiness()
        return readiness_response(ok, report)

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
        ]
    )


class AdminPortSplit:
    """Route each HTTP request by the port it arrived on: the admin port to the admin app, any other to
    the main app. Lifespan events go to the main app, which owns every resource."""

    def __init__(self, main: Any, admin_port: int) -> None:
        self.main: ASGIApp = main
        # The checks are read per request: the main app's lifespan puts them on its state.
        self.admin: ASGIApp = create_admin_app(lambda: main.state.health.run())
        self.admin_port = admin_port
        self.state = main.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] == "http" and server[1] == self.admin_port:
            await self.admin(scope, receive, send)
        else:
            await self.main(scope, receive, send)
