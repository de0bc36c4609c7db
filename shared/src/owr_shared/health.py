"""Liveness (the process alone) and readiness (its dependencies, each under a short timeout).

Readiness also fails while the process drains after SIGTERM (`begin_drain`, called by
`owr_shared.serve` and the gateway's runner): load balancers and Kubernetes stop sending new requests
while the process still serves the ones in flight. Liveness stays up until the process exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[object]]

_draining = False


def begin_drain() -> None:
    """Mark the whole process as shutting down: every readiness check answers 503 from now on."""
    global _draining
    _draining = True


def end_drain() -> None:
    """Undo `begin_drain` (tests that drive a server in-process)."""
    global _draining
    _draining = False


def is_draining() -> bool:
    return _draining


class HealthChecks:
    """Named readiness checks; each must answer within `timeout` seconds."""

    def __init__(self, timeout: float = 1.0) -> None:
        self.timeout = timeout
        self.checks: dict[str, Check] = {}
        self.shutting_down = False

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def run(self) -> tuple[bool, dict[str, str]]:
        async def one(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), timeout=self.timeout)
            except TimeoutError:
                return "timeout"
            except Exception as exc:  # any failure of a dependency means "not ready"
                return f"error: {type(exc).__name__}"
            return "ok"

        names = list(self.checks)
        results = await asyncio.gather(*(one(self.checks[n]) for n in names))
        report = dict(zip(names, results, strict=True))
        stopping = self.shutting_down or _draining
        if stopping:
            report["shutdown"] = "draining"
        ok = all(r == "ok" for r in results) and not stopping
        return ok, report


def health_router() -> APIRouter:
    """`/health/live` and `/health/ready`; the checks come from `app.state.health`."""
    router = APIRouter(tags=["health"], include_in_schema=False)

    @router.get("/health/live")
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        checks: HealthChecks = request.app.state.health
        ok, report = await checks.run()
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": report}, status_code=200 if ok else 503)

    return router
