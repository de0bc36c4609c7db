"""The admin app (its own port, never public): Prometheus metrics and health probes."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from owr_gateway.state import GatewayState
from owr_shared.metrics import metrics_endpoint


def create_admin_app(state: GatewayState) -> Starlette:
    """`/metrics`, `/health/live`, `/health/ready`; readiness uses the main app's clients."""

    async def live(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> JSONResponse:
        ok, report = await state.readiness()
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": report}, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
            Route("/health/ready", ready, methods=["GET"]),
        ]
    )
