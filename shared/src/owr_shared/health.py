"""Liveness (the process alone) and readiness (its dependencies, each under a short timeout).

A dependency every replica shares and the process can serve without, at reduced function (Redis for the
HTTP services, auth for the gateway), is added with `degrades=True`: its failure shows in the report as
`degraded`, and the replica stays ready. Otherwise an outage of it would take every replica out of the load
balancer at once, turning "rate limits fall back, logins get a fast 503" into "nothing answers at all".

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
        self.degrading: set[str] = set()
        self.shutting_down = False

    def add(self, name: str, check: Check, *, degrades: bool = False) -> None:
        """A readiness check; with `degrades`, its failure is reported but leaves the process ready."""
        self.checks[name] = check
        if degrades:
            self.degrading.add(name)

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
        ok = all(r == "ok" for n, r in report.items() if n in self.checks and n not in self.degrading)
        return ok and not stopping, report


def readiness_response(ok: bool, report: dict[str, str]) -> JSONResponse:
    """200 `ok` or `degraded` (a degrading check failed), or 503 `unavailable`, with every check's result."""
    degraded = ok and any(result != "ok" for result in report.values())
    status = "degraded" if degraded else "ok" if ok else "unavailable"
    return JSONResponse({"status": status, "checks": report}, status_code=200 if ok else 503)


def health_router() -> APIRouter:
    """`/health/live` and `/health/ready`; the checks come from `app.state.health`."""
    router = APIRouter(tags=["health"], include_in_schema=False)

    @router.get("/health/live")
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        checks: HealthChecks = request.app.state.health
        return readiness_response(*await checks.run())

    return router
