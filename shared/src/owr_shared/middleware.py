"""Pure ASGI middleware for every FastAPI service: request context, RED metrics, one log line per request."""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from owr_shared.context import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    parse_traceparent,
    request_id_var,
    sanitize_request_id,
    trace_id_var,
)
from owr_shared.logging import get_logger
from owr_shared.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED_ROUTE

log = get_logger("owr.http")

# Probes and scrapes are frequent and uninteresting; they are counted but not logged.
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/metrics"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# The web dashboard's pages: their own scripts and styles only (no inline script or style), their own forms
# and images, never framed. One definition, sent by the gateway and by web itself (reached directly).
PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    b"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", PAGE_CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class RequestContextMiddleware:
    """Bind request id and trace id, echo the request id, record RED metrics by route template."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = sanitize_request_id(_header(scope, REQUEST_ID_HEADER.encode()))
        parsed = parse_traceparent(_header(scope, TRACEPARENT_HEADER.encode()))
        trace_id = parsed[0] if parsed else None
        rid_token = request_id_var.set(request_id)
        tid_token = trace_id_var.set(trace_id)
        structlog.contextvars.clear_contextvars()
        status = 500
        start = time.perf_counter()
        request_id_header = (b"x-request-id", request_id.encode())

        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", []), request_id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # Answered here, not by Starlette's outermost middleware, which re-raises after answering:
            # the server then logs a second error and drops the keep-alive connection, failing the
            # next request that a proxy sends on it. Only a failure mid-answer still propagates.
            handler = scope["app"].exception_handlers.get(Exception) if "app" in scope else None
            if started or handler is None:
                raise
            response = await handler(Request(scope), exc)
            await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()
            HTTP_DURATION.labels(self.service, route, method).observe(elapsed)
            if scope["path"] not in _QUIET_PATHS:
                log.info("request", method=method, route=route, status=status, duration_ms=round(elapsed * 1000, 2))
            request_id_var.reset(rid_token)
            trace_id_var.reset(tid_token)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
