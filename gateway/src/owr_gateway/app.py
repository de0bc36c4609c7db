"""The gateway's public ASGI application: one request runs screen → route → admit → forward → relay.

Pure ASGI on purpose: every microsecond spent here is added to every request, so header names are
precomputed bytes, lookups are dict hits, and nothing is validated twice. Each step lives in
`owr_gateway.pipeline`; a step that will not let the request go on raises `Refusal`, answered here.
"""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from owr_gateway.clientip import TrustedProxies, client_address
from owr_gateway.docs import DOCS_PATHS, docs_file
from owr_gateway.metrics import HttpMetrics
from owr_gateway.openapi import OPENAPI_PATH, OpenApiDocument, OpenApiUnavailable
from owr_gateway.pipeline.admit import Admission
from owr_gateway.pipeline.forward import CLIENT_CLOSED, ClientGone, Forwarder, upstream_headers
from owr_gateway.pipeline.incoming import Incoming, read_headers
from owr_gateway.pipeline.problems import NO_STORE, Exchange, Header, Refusal, SecurityHeaders, retry_after
from owr_gateway.pipeline.relay import Relay
from owr_gateway.pipeline.route import WEB, Router
from owr_gateway.pipeline.screen import screen
from owr_gateway.routing import RouteTable
from owr_gateway.settings import GatewaySettings
from owr_gateway.state import GatewayState
from owr_shared.context import request_id_var, trace_id_var
from owr_shared.errors import INTERNAL_ERROR, METHOD_NOT_ALLOWED, SERVICE_UNAVAILABLE
from owr_shared.logging import get_logger
from owr_shared.metrics import UNMATCHED_ROUTE

log = get_logger("owr.http")

# Liveness only: readiness pings Redis and auth, so it is served on the admin port alone (admin.py).
HEALTH_LIVE = "/health/live"
_HEALTH_ROUTE = "<health>"
_DOC_PATHS = frozenset({OPENAPI_PATH, *DOCS_PATHS})
_HEALTH_BODY = b'{"status":"ok"}'
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_CT_JSON: Header = (b"content-type", b"application/json")


class GatewayApp:
    """The public entry; `state` is shared with the admin app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.state = GatewayState(settings)
        self._routes = RouteTable(settings.routes)
        self._upstream_bases = {name: settings.upstream_url(name) for name in settings.upstreams}
        self._trusted = TrustedProxies(settings.trusted_proxies)
        self._router = Router(self._routes, settings.max_body_bytes, web=settings.web_url is not None)
        self._admission = Admission(self.state)
        self._forwarder = Forwarder(self.state, self._upstream_bases, settings.max_body_bytes)
        self._relay = Relay(self._upstream_bases)
        self._metrics = HttpMetrics()
        self._openapi: OpenApiDocument | None = None
        self._security = SecurityHeaders(settings.hsts_seconds)
        self._public_tls = settings.public_tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.state.start()
                except Exception as exc:
                    log.error("startup_failed", error_type=type(exc).__name__)
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.state.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request through the pipeline, logged and measured once whatever its end."""
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        incoming = read_headers(scope["headers"])
        tls = self._over_tls(scope, incoming)
        if path == HEALTH_LIVE:
            await self._live(send, self._security.api_tls if tls else self._security.api)
            self._metrics.observe(_HEALTH_ROUTE, method, 200, time.perf_counter() - start)
            return
        rid_token = request_id_var.set(incoming.request_id)
        tid_token = trace_id_var.set(incoming.trace_id)
        security = self._security.api_tls if tls else self._security.api
        exchange = Exchange(path, incoming.request_id, UNMATCHED_ROUTE, security)
        try:
            await self._proxy(scope, receive, send, exchange, incoming)
        except Refusal as refusal:
            await exchange.refuse(send, refusal)
        except ClientGone:
            exchange.status = CLIENT_CLOSED
        except Exception as exc:
            if exchange.started:
                # Mid-stream failure: aborting the connection is the only honest signal left.
                log.warning("response_aborted", error_type=type(exc).__name__)
                raise
            log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
            await exchange.refuse(send, Refusal(INTERNAL_ERROR, "An unexpected error occurred."))
        finally:
            elapsed = time.perf_counter() - start
            route, status = exchange.route, exchange.status
            self._metrics.observe(route, method if method in _KNOWN_METHODS else "OTHER", status, elapsed)
            log.info("request", method=method, route=route, status=status, duration_ms=round(elapsed * 1000, 2))
            request_id_var.reset(rid_token)
            trace_id_var.reset(tid_token)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange, incoming: Incoming) -> None:
        path: str = scope["path"]
        screen(path, scope.get("raw_path") or path.encode())
        if path in _DOC_PATHS:
            exchange.route = path
            client_ip, _ = client_address(scope.get("client"), incoming.forwarded_for, self._trusted)
            await self._documentation(path, scope["method"], send, exchange, client_ip)
            return
        route = self._router.match(path)
        exchange.route = route.prefix
        if route.upstream == WEB:
            tls = exchange.security is self._security.api_tls
            exchange.security = self._security.web_tls if tls else self._security.web
        content_length = self._router.check(route, scope["method"], incoming)
        client_ip, trusted_peer = client_address(scope.get("client"), incoming.forwarded_for, self._trusted)
        decision = await self._admission.admit(route, incoming, client_ip)
        headers = upstream_headers(incoming, decision, client_ip, trusted_peer, scope.get("scheme", "http"))
        body = await self._forwarder.read_body(receive, content_length, incoming.chunked)
        response = await self._forwarder.send(scope, route, headers, body)
        await self._relay.relay(response, route.upstream, decision.headers, exchange, send, receive, body)

    async def _documentation(self, path: str, method: str, send: Send, exchange: Exchange, client_ip: str) -> None:
        """The merged OpenAPI document, or the Swagger UI page that reads it (and its assets), rate-limited."""
        if method not in ("GET", "HEAD"):
            raise Refusal(METHOD_NOT_ALLOWED, "Use GET.", ((b"allow", b"GET, HEAD"),))
        decision = await self._admission.admit_anonymous(client_ip)
        if path != OPENAPI_PATH:
            body, content_type = docs_file(path)
            tls = exchange.security is self._security.api_tls
            exchange.security = self._security.docs_tls if tls else self._security.docs
        else:
            if self._openapi is None:
                self._openapi = OpenApiDocument(self.state.sessions, self._upstream_bases, self._routes)
            try:
                body, content_type = await self._openapi.body(), b"application/json"
            except OpenApiUnavailable:
                detail = "A service's API description could not be fetched."
                raise Refusal(SERVICE_UNAVAILABLE, detail, (retry_after(5),)) from None
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), exchange.rid_header]
        headers.append((b"cache-control", b"public, max-age=60"))
        headers.extend(decision.headers)
        headers.extend(exchange.security)
        exchange.status = 200
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def _over_tls(self, scope: Scope, incoming: Incoming) -> bool:
        """Whether the client reached us over TLS: always (a setting), here, or at a trusted proxy that says so."""
        if self._public_tls or scope.get("scheme") == "https":
            return True
        if incoming.forwarded_proto != b"https" or not self._trusted:
            return False
        peer = scope.get("client")
        return peer is not None and peer[0] in self._trusted

    async def _live(self, send: Send, security: tuple[Header, ...]) -> None:
        headers = [_CT_JSON, (b"content-length", b"%d" % len(_HEALTH_BODY)), NO_STORE, *security]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _HEALTH_BODY})


def create_app(settings: GatewaySettings) -> GatewayApp:
    """The public ASGI app; run it under uvicorn (its lifespan opens and closes every client)."""
    return GatewayApp(settings)
