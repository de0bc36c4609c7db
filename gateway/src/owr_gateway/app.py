"""The gateway's public ASGI application: screen, route, authenticate, rate-limit, proxy.

Pure ASGI on purpose: every microsecond spent here is added to every request, so header names are
precomputed bytes, lookups are dict hits, and nothing is validated twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from owr_gateway.clientip import TrustedProxies, resolve_client_ip
from owr_gateway.metrics import UPSTREAM_ERRORS, HttpMetrics
from owr_gateway.openapi import DOCS_HTML, DOCS_PATH, OPENAPI_PATH, OpenApiDocument, OpenApiUnavailable
from owr_gateway.paths import PATH_INTERNAL, PATH_OK, screen_path
from owr_gateway.ratelimit import ALLOWED, LIMITED, MISS, REVOKED, UNAVAILABLE, Decision, RateLimiter
from owr_gateway.routing import RouteTable
from owr_gateway.settings import GatewaySettings
from owr_gateway.state import UPSTREAMS, GatewayState
from owr_gateway.tokens import IntrospectionUnavailable, is_api_token
from owr_shared.context import new_traceparent, parse_traceparent, request_id_var, sanitize_request_id, trace_id_var
from owr_shared.errors import PROBLEM_CONTENT_TYPE, problem_body
from owr_shared.jwt import InvalidToken
from owr_shared.logging import get_logger
from owr_shared.metrics import UNMATCHED_ROUTE

log = get_logger("owr.http")

HEALTH_LIVE = "/health/live"
HEALTH_READY = "/health/ready"
_HEALTH_ROUTE = "<health>"
_HEALTH_PATHS = frozenset({HEALTH_LIVE, HEALTH_READY})
_DOC_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH})

# What to do with each request header (names arrive lower-cased from the ASGI server).
_FORWARD, _DROP, _REQUEST_ID, _TRACEPARENT, _TRACESTATE, _AUTHORIZATION = range(6)
_XFF, _XFP, _HOST, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION = range(6, 12)
_REQUEST_HEADER_ACTIONS: dict[bytes, int] = {
    b"x-request-id": _REQUEST_ID,
    b"traceparent": _TRACEPARENT,
    b"tracestate": _TRACESTATE,
    b"authorization": _AUTHORIZATION,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"host": _HOST,
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    # Hop-by-hop (RFC 9110 §7.6.1) plus what the gateway itself decides for upstreams.
    b"keep-alive": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"upgrade": _DROP,
    b"expect": _DROP,
    b"x-forwarded-host": _DROP,
    b"x-forwarded-port": _DROP,
    b"x-real-ip": _DROP,
    b"forwarded": _DROP,
}
# Response headers not passed back: hop-by-hop, and what the gateway sets itself (an upstream's
# Retry-After passes: a locked login or a 503 must still tell the client when to come back).
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"x-request-id",
        b"date",
        b"server",
        b"ratelimit",
        b"ratelimit-policy",
        b"x-ratelimit-limit",
        b"x-ratelimit-remaining",
        b"x-ratelimit-reset",
    }
)
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_CT_PROBLEM = (b"content-type", PROBLEM_CONTENT_TYPE.encode())
_CT_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"no-store")
_WWW_AUTH_MISSING = (b"www-authenticate", b"Bearer")
_WWW_AUTH_INVALID = (b"www-authenticate", b'Bearer error="invalid_token"')
_CLOSE = (b"connection", b"close")
INVALID = "invalid"


class _BodyState:
    """How the request body's relay went (shared with the streaming generator)."""

    __slots__ = ("done", "too_large")

    def __init__(self) -> None:
        self.done = True
        self.too_large = False


class _BodyTooLarge(Exception):
    """The request body grew past the limit while being streamed upstream."""


class _ClientGone(Exception):
    """The client disconnected while its body was being streamed upstream."""


class GatewayApp:
    """The public entry; `state` is shared with the admin app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.state = GatewayState(settings)
        self._routes = RouteTable(settings.routes)
        self._upstream_bases = {name: settings.upstream_url(name) for name in UPSTREAMS}
        self._upstream_base_bytes = {name: url.encode() for name, url in self._upstream_bases.items()}
        self._max_body = settings.max_body_bytes
        self._trusted = TrustedProxies(settings.trusted_proxies)
        self._metrics = HttpMetrics()
        self._openapi: OpenApiDocument | None = None

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
        start = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        if path in _HEALTH_PATHS:
            status = await self._health(path, send)
            self._metrics.observe(_HEALTH_ROUTE, method, status, time.perf_counter() - start)
            return

        # One pass over the request headers: pick out what we act on, keep what we forward.
        request_id_raw = traceparent_raw = tracestate = authorization = None
        forwarded_for = forwarded_proto = host = content_length_raw = connection = None
        chunked = duplicate_authorization = False
        forward: list[tuple[str, str]] = []
        actions = _REQUEST_HEADER_ACTIONS
        for name, value in scope["headers"]:
            action = actions.get(name, _FORWARD)
            if action == _FORWARD:
                if name.startswith(b"proxy-"):
                    continue
                forward.append((name.decode("latin-1"), value.decode("latin-1")))
            elif action == _DROP:
                continue
            elif action == _AUTHORIZATION:
                # Two of them could let the gateway verify one token while the upstream reads the other.
                duplicate_authorization = authorization is not None
                authorization = value
                forward.append(("authorization", value.decode("latin-1")))
            elif action == _REQUEST_ID:
                request_id_raw = value
            elif action == _TRACEPARENT:
                traceparent_raw = value
            elif action == _TRACESTATE:
                tracestate = value if tracestate is None else tracestate + b"," + value
            elif action == _XFF:
                forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
            elif action == _XFP:
                forwarded_proto = value
            elif action == _HOST:
                host = value
            elif action == _CONTENT_LENGTH:
                content_length_raw = value
            elif action == _TRANSFER_ENCODING:
                chunked = True
            elif action == _CONNECTION:
                connection = value if connection is None else connection + b"," + value

        request_id = sanitize_request_id(request_id_raw.decode("latin-1") if request_id_raw else None)
        parsed = parse_traceparent(traceparent_raw.decode("latin-1")) if traceparent_raw else None
        if parsed is not None:
            traceparent = traceparent_raw.decode("latin-1").strip().lower() if traceparent_raw else ""
            trace_id = parsed[0]
        else:
            traceparent = new_traceparent()
            trace_id = traceparent[3:35]
            tracestate = None  # belongs to the caller's (invalid) trace
        rid_token = request_id_var.set(request_id)
        tid_token = trace_id_var.set(trace_id)
        rid_header = (b"x-request-id", request_id.encode())

        route_label = UNMATCHED_ROUTE
        status = 500
        response_started = False

        async def problem(
            code: int,
            slug: str,
            title: str,
            detail: str,
            extra: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...] = (),
        ) -> None:
            nonlocal status, response_started
            body = problem_body(code, title=title, detail=detail, slug=slug, instance=path, request_id=request_id)
            status = code
            response_started = True
            await send(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [_CT_PROBLEM, (b"content-length", b"%d" % len(body)), rid_header, _NO_STORE, *extra],
                }
            )
            await send({"type": "http.response.body", "body": body})

        async def too_large() -> None:
            await problem(
                413,
                "payload-too-large",
                "Content Too Large",
                f"The request body exceeds {self._max_body} bytes.",
                (_CLOSE,),
            )

        try:
            screened = screen_path(path, scope.get("raw_path") or path.encode())
            if screened != PATH_OK:
                if screened == PATH_INTERNAL:
                    await problem(404, "not-found", "Not Found", "No route matches this path.")
                else:
                    await problem(
                        400, "bad-request", "Bad Request", "The path contains dot segments or encoded separators."
                    )
                return
            if path in _DOC_PATHS:
                route_label = path
                if method not in ("GET", "HEAD"):
                    await problem(
                        405, "method-not-allowed", "Method Not Allowed", "Use GET.", ((b"allow", b"GET, HEAD"),)
                    )
                    return
                status = await self._documentation(path, method, send, rid_header, problem)
                return
            route = self._routes.match(path)
            if route is None:
                await problem(404, "not-found", "Not Found", "No route matches this path.")
                return
            route_label = route.prefix
            if duplicate_authorization:
                await problem(400, "bad-request", "Bad Request", "Send at most one Authorization header.")
                return
            if route.methods is not None and method not in route.methods:
                await problem(
                    405,
                    "method-not-allowed",
                    "Method Not Allowed",
                    "This method is not allowed on this path.",
                    ((b"allow", route.allow_header),),
                )
                return

            content_length = -1
            if content_length_raw is not None:
                if chunked or not content_length_raw.isdigit():
                    await problem(
                        400, "bad-request", "Bad Request", "The Content-Length header is not valid.", (_CLOSE,)
                    )
                    return
                content_length = int(content_length_raw)
                if content_length > self._max_body:
                    await too_large()
                    return

            state = self.state
            limiter = state.limiter
            authenticator = state.authenticator
            if limiter is None or authenticator is None:
                await problem(
                    503,
                    "service-unavailable",
                    "Service Unavailable",
                    "The gateway is starting.",
                    ((b"retry-after", b"1"),),
                )
                return

            peer_info = scope.get("client")
            peer = peer_info[0] if peer_info else "unknown"
            trusted_peer = bool(self._trusted) and peer in self._trusted
            client_ip = (
                resolve_client_ip(peer, forwarded_for.decode("latin-1"), self._trusted)
                if trusted_peer and forwarded_for
                else peer
            )

            principal = None
            api_token = _api_token(authorization) if route.requires_jwt else None
            if api_token is not None:
                decision = await self._admit_api_token(api_token, limiter, request_id, traceparent)
                if decision.outcome == INVALID:
                    await problem(
                        401,
                        "invalid-token",
                        "Invalid Token",
                        "The API token is unknown, revoked or expired.",
                        (_WWW_AUTH_INVALID,),
                    )
                    return
                if decision.upstream_token is not None:
                    # Upstream sees the short-lived JWT auth minted for this token, never the token.
                    forward = [(k, v) for k, v in forward if k != "authorization"]
                    forward.append(("authorization", "Bearer " + decision.upstream_token))
            elif route.requires_jwt:
                try:
                    principal = await authenticator.authenticate(authorization)
                except InvalidToken as exc:
                    bearer = authorization is not None and authorization[:7].lower() == b"bearer "
                    www = _WWW_AUTH_INVALID if bearer else _WWW_AUTH_MISSING
                    await problem(401, exc.slug, exc.title, exc.detail, (www,))
                    return

            if principal is not None:
                subject = principal.subject if route.policy == "user" else client_ip
                decision = await limiter.check(
                    route.policy, subject, user_id=principal.subject, issued_at=principal.issued_at
                )
            elif api_token is None:
                decision = await limiter.check(route.policy, client_ip)
            outcome = decision.outcome
            if outcome != ALLOWED:
                if outcome == REVOKED:
                    await problem(
                        401, "invalid-token", "Invalid Token", "The token has been revoked.", (_WWW_AUTH_INVALID,)
                    )
                elif outcome == LIMITED:
                    await problem(
                        429,
                        "rate-limited",
                        "Too Many Requests",
                        "The rate limit is exhausted.",
                        [(b"retry-after", b"%d" % decision.retry_after), *decision.headers],
                    )
                elif outcome == UNAVAILABLE:
                    await problem(
                        503,
                        "service-unavailable",
                        "Service Unavailable",
                        "The service is temporarily unavailable.",
                        [(b"retry-after", b"%d" % decision.retry_after), *decision.headers],
                    )
                return

            # Headers the gateway decides, after the client's copies were dropped above.
            if connection is not None:
                forward = _drop_connection_listed(forward, connection)
            forward.append(("x-request-id", request_id))
            forward.append(("traceparent", traceparent))
            if tracestate is not None:
                forward.append(("tracestate", tracestate.decode("latin-1")))
            forward.append(("x-forwarded-for", client_ip))
            proto = scope.get("scheme", "http")
            if trusted_peer and forwarded_proto in (b"http", b"https"):
                proto = forwarded_proto.decode() if forwarded_proto else proto
            forward.append(("x-forwarded-proto", proto))
            if host is not None:
                forward.append(("x-forwarded-host", host.decode("latin-1")))

            # Body: none, whole (one ASGI message, the usual case), or streamed with a running limit.
            data: Any = None
            body = _BodyState()
            if content_length > 0 or chunked:
                message = await receive()
                if message["type"] == "http.disconnect":
                    status = 499
                    return
                first: bytes = message.get("body", b"")
                if len(first) > self._max_body:
                    await too_large()
                    return
                if message.get("more_body", False):
                    body.done = False
                    data = _stream_body(first, receive, self._max_body, body)
                else:
                    data = first
            elif content_length == 0:
                data = b""

            raw_path: bytes = scope.get("raw_path") or path.encode()
            query: bytes = scope.get("query_string", b"")
            target = self._upstream_bases[route.upstream] + raw_path.decode("latin-1")
            if query:
                target += "?" + query.decode("latin-1")
            session = state.sessions[route.upstream]
            try:
                response = await session.request(
                    method, URL(target, encoded=True), headers=forward, data=data, allow_redirects=False
                )
            except Exception as exc:
                if body.too_large:
                    await too_large()
                    return
                if isinstance(exc, _ClientGone) or isinstance(exc.__cause__, _ClientGone):
                    status = 499
                    return
                if isinstance(exc, asyncio.TimeoutError):
                    UPSTREAM_ERRORS.labels(route.upstream, "timeout").inc()
                    log.warning(
                        "upstream_error", upstream=route.upstream, kind="timeout", error_type=type(exc).__name__
                    )
                    await problem(
                        504, "upstream-timeout", "Gateway Timeout", "The upstream service did not answer in time."
                    )
                    return
                if isinstance(exc, aiohttp.ClientError | OSError):
                    UPSTREAM_ERRORS.labels(route.upstream, "unreachable").inc()
                    log.warning(
                        "upstream_error", upstream=route.upstream, kind="unreachable", error_type=type(exc).__name__
                    )
                    await problem(
                        502, "upstream-unavailable", "Bad Gateway", "The upstream service could not be reached."
                    )
                    return
                raise

            disconnected: asyncio.Future[None] | None = None
            try:
                headers: list[tuple[bytes, bytes]] = []
                upstream_connection = False
                for key, value in response.raw_headers:
                    lowered = key.lower()
                    if lowered in _RESPONSE_DROP:
                        upstream_connection = upstream_connection or lowered == b"connection"
                        continue
                    if lowered == b"location":
                        value = self._public_location(route.upstream, value)
                    headers.append((key, value))
                if upstream_connection:
                    headers = _drop_connection_listed_bytes(headers, response.raw_headers)
                headers.append(rid_header)
                headers.extend(decision.headers)
                status = response.status
                response_started = True
                await send({"type": "http.response.start", "status": status, "headers": headers})
                content = response.content
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        await send({"type": "http.response.body", "body": b""})
                        break
                    last = content.is_eof()
                    await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                    if last:
                        break
                    # A long stream: notice a client that went away instead of reading the upstream
                    # to its end (the ASGI server drops sends to a closed connection silently).
                    if disconnected is None and body.done:
                        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
                    elif disconnected is not None and disconnected.done():
                        status = 499
                        response.close()
                        return
            except BaseException:
                response.close()
                raise
            finally:
                if disconnected is not None:
                    disconnected.cancel()
            response.release()
        except Exception as exc:
            if response_started:
                # Mid-stream failure: aborting the connection is the only honest signal left.
                log.warning("response_aborted", error_type=type(exc).__name__)
                raise
            log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
            await problem(500, "internal-error", "Internal Server Error", "An unexpected error occurred.")
        finally:
            elapsed = time.perf_counter() - start
            self._metrics.observe(route_label, method if method in _KNOWN_METHODS else "OTHER", status, elapsed)
            log.info("request", method=method, route=route_label, status=status, duration_ms=round(elapsed * 1000, 2))
            request_id_var.reset(rid_token)
            trace_id_var.reset(tid_token)

    async def _admit_api_token(self, token: bytes, limiter: RateLimiter, request_id: str, traceparent: str) -> Decision:
        """The rate-limit decision for an API token, introspecting it at auth when it is not cached.

        One Redis round trip when cached (the usual case); on a miss, one call to auth, the answer
        cached for as long as auth allows (at most 60 s), then the same round trip again.
        """
        introspector = self.state.introspector
        if introspector is None:
            return Decision(INVALID, [])  # no credentials for auth: API tokens are not accepted here
        cache_key = introspector.cache_key(token)
        decision = await limiter.check_token(cache_key)
        if decision.outcome != MISS:
            return decision
        try:
            grant = await introspector.introspect(
                token, {"x-request-id": request_id, "traceparent": new_traceparent(traceparent[3:35])}
            )
        except IntrospectionUnavailable:
            return Decision(UNAVAILABLE, [], 1)
        if grant is None:
            return Decision(INVALID, [])
        try:
            # At least a second, so even a token in its last moments is counted like any other.
            await limiter.store_token(cache_key, grant.cache_fields(), max(1, grant.cache_seconds))
        except Exception as exc:  # Redis trouble: the check below says unavailable
            log.warning("token_cache_store_failed", error_type=type(exc).__name__)
        decision = await limiter.check_token(cache_key)
        if decision.outcome == MISS:  # evicted already, or Redis lost it: let the client retry
            return Decision(UNAVAILABLE, [], 1)
        return decision

    async def _documentation(
        self, path: str, method: str, send: Send, rid_header: tuple[bytes, bytes], problem: Any
    ) -> int:
        """The merged OpenAPI document, or the Swagger UI page that reads it."""
        if path == DOCS_PATH:
            body, content_type = DOCS_HTML, b"text/html; charset=utf-8"
        else:
            if self._openapi is None:
                self._openapi = OpenApiDocument(self.state.sessions, self._upstream_bases, self._routes)
            try:
                body, content_type = await self._openapi.body(), b"application/json"
            except OpenApiUnavailable:
                await problem(
                    503,
                    "service-unavailable",
                    "Service Unavailable",
                    "A service's API description could not be fetched.",
                    ((b"retry-after", b"5"),),
                )
                return 503
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), rid_header]
        headers.append((b"cache-control", b"public, max-age=60"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        return 200

    def _public_location(self, upstream: str, value: bytes) -> bytes:
        """An upstream's absolute redirect to itself becomes relative: no internal host or port leaks."""
        base = self._upstream_base_bytes[upstream]
        if value.startswith(base) and value[len(base) : len(base) + 1] in (b"/", b"?", b""):
            return value[len(base) :] or b"/"
        return value

    async def _health(self, path: str, send: Send) -> int:
        if path == HEALTH_LIVE:
            status, body = 200, b'{"status":"ok"}'
        else:
            ok, report = await self.state.readiness()
            status = 200 if ok else 503
            body = orjson.dumps({"status": "ok" if ok else "unavailable", "checks": report})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_CT_JSON, (b"content-length", b"%d" % len(body)), _NO_STORE],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return status


async def _stream_body(first: bytes, receive: Receive, limit: int, state: _BodyState) -> AsyncIterator[bytes]:
    """Relay the request body from ASGI to aiohttp, refusing to pass more than `limit` bytes."""
    received = len(first)
    if first:
        yield first
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            state.too_large = True
            raise _BodyTooLarge
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            state.done = True
            return


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # an (empty) request body message that nobody read yet


def _connection_tokens(value: bytes) -> set[str]:
    return {token.strip().lower() for token in value.decode("latin-1").split(",") if token.strip()}


def _api_token(authorization: bytes | None) -> bytes | None:
    """The `owr_…` token of a `Bearer` header, else None (a JWT, another scheme, or nothing)."""
    if authorization is None or authorization[:7].lower() != b"bearer ":
        return None
    token = authorization[7:].strip()
    return token if is_api_token(token) else None


def _drop_connection_listed(headers: list[tuple[str, str]], connection: bytes) -> list[tuple[str, str]]:
    """Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1)."""
    listed = _connection_tokens(connection)
    return [(k, v) for k, v in headers if k not in listed]


def _drop_connection_listed_bytes(headers: list[tuple[bytes, bytes]], raw: Any) -> list[tuple[bytes, bytes]]:
    listed: set[str] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            listed |= _connection_tokens(value)
    return [(k, v) for k, v in headers if k.decode("latin-1").lower() not in listed]


def create_app(settings: GatewaySettings) -> GatewayApp:
    """The public ASGI app; run it under uvicorn (its lifespan opens and closes every client)."""
    return GatewayApp(settings)
