"""Step 4, forward: the upstream request, with the headers the gateway decides and the body under its limit."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from starlette.types import Message, Receive, Scope
from yarl import URL

from owr_gateway.metrics import STALE_CONNECTIONS, UPSTREAM_ERRORS
from owr_gateway.pipeline.incoming import Incoming
from owr_gateway.pipeline.problems import Refusal, retry_after, too_large
from owr_gateway.ratelimit import Decision
from owr_gateway.routing import Route
from owr_shared.errors import SERVICE_UNAVAILABLE, UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE
from owr_shared.logging import get_logger

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

    from owr_gateway.state import GatewayState

# Seconds a client is asked to wait when an upstream had no connection for its request.
UPSTREAM_BUSY_RETRY = 1

log = get_logger("owr.http")
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
# How many dead pooled connections one request may discard before it takes what it gets.
_MAX_STALE = 8

CLIENT_CLOSED = 499  # nginx's status for a client that went away before its answer


class ClientGone(Exception):
    """The client disconnected before its request was passed on: nobody is left to answer (499)."""


class BodyTooLarge(Exception):
    """The request body grew past the limit while being streamed upstream."""


class RequestBody:
    """What goes upstream: nothing, the whole body, or a stream; `done` once the client sent all of it."""

    __slots__ = ("data", "done", "too_large")

    def __init__(self, data: Any = None) -> None:
        self.data = data
        self.done = True
        self.too_large = False


def upstream_headers(
    incoming: Incoming, decision: Decision, client_ip: str, trusted_peer: bool, scheme: str
) -> list[tuple[str, str]]:
    """The client's end-to-end headers, plus those the gateway decides after dropping the client's copies."""
    forward = incoming.forward
    if decision.upstream_token is not None:
        # Upstream sees the short-lived JWT auth minted for an API token, never the token.
        forward = [(k, v) for k, v in forward if k != "authorization"]
        forward.append(("authorization", "Bearer " + decision.upstream_token))
    if incoming.connection is not None:
        # Headers named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
        listed = connection_tokens(incoming.connection)
        forward = [(k, v) for k, v in forward if k not in listed]
    forward.append(("x-request-id", incoming.request_id))
    forward.append(("traceparent", incoming.traceparent))
    if incoming.tracestate is not None:
        forward.append(("tracestate", incoming.tracestate.decode("latin-1")))
    forward.append(("x-forwarded-for", client_ip))
    proto = scheme
    forwarded_proto = incoming.forwarded_proto
    if trusted_peer and forwarded_proto in (b"http", b"https"):
        proto = forwarded_proto.decode() if forwarded_proto else proto
    forward.append(("x-forwarded-proto", proto))
    if incoming.host is not None:
        forward.append(("x-forwarded-host", incoming.host.decode("latin-1")))
    return forward


def connection_tokens(value: bytes) -> set[str]:
    return {token.strip().lower() for token in value.decode("latin-1").split(",") if token.strip()}


class Forwarder:
    """Send the request to its upstream over that upstream's keep-alive session."""

    def __init__(self, state: GatewayState, upstream_bases: dict[str, str], max_body: int) -> None:
        self._state = state
        self._upstream_bases = upstream_bases
        self._max_body = max_body

    async def read_body(self, receive: Receive, content_length: int, chunked: bool) -> RequestBody:
        """None, whole (one ASGI message, the usual case), or streamed with a running limit."""
        if content_length == 0:
            return RequestBody(b"")
        if content_length < 0 and not chunked:
            return RequestBody()
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        first: bytes = message.get("body", b"")
        if len(first) > self._max_body:
            raise too_large(self._max_body)
        if not message.get("more_body", False):
            return RequestBody(first)
        body = RequestBody()
        body.done = False
        body.data = _stream_body(first, receive, self._max_body, body)
        return body

    async def send(
        self, scope: Scope, route: Route, headers: list[tuple[str, str]], body: RequestBody
    ) -> aiohttp.ClientResponse:
        """The upstream's response (its body still to read), or the refusal its failure means."""
        path: str = scope["path"]
        raw_path: bytes = scope.get("raw_path") or path.encode()
        query: bytes = scope.get("query_string", b"")
        target = self._upstream_bases[route.upstream] + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        session = self._state.sessions[route.upstream]
        try:
            return await session.request(
                scope["method"], URL(target, encoded=True), headers=headers, data=body.data, allow_redirects=False
            )
        except Exception as exc:
            if body.too_large:
                raise too_large(self._max_body) from None
            if isinstance(exc, ClientGone) or isinstance(exc.__cause__, ClientGone):
                raise ClientGone from None
            refusal = upstream_failure(route.upstream, exc)
            if refusal is None:
                raise
            raise refusal from None


def upstream_failure(upstream: str, exc: Exception) -> Refusal | None:
    """The answer to an upstream that failed before responding, counted; None for anything unexpected.

    A request that never got a connection (none free in the pool within the connect timeout, or the
    upstream's backlog refused it) never reached the upstream: that is overload, so a 503 with
    Retry-After the client may act on, not a 504 or 502 that says something broke mid-request.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        kind = "busy" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "unreachable"
        retry = (retry_after(UPSTREAM_BUSY_RETRY),)
        refusal = Refusal(SERVICE_UNAVAILABLE, "The upstream service is unavailable; retry shortly.", retry)
    elif isinstance(exc, asyncio.TimeoutError):
        kind, refusal = "timeout", Refusal(UPSTREAM_TIMEOUT, "The upstream service did not answer in time.")
    elif isinstance(exc, aiohttp.ClientError | OSError):
        kind, refusal = "broken", Refusal(UPSTREAM_UNAVAILABLE, "The upstream service failed mid-request.")
    else:
        return None
    UPSTREAM_ERRORS.labels(upstream, kind).inc()
    log.warning("upstream_error", upstream=upstream, kind=kind, error_type=type(exc).__name__)
    return refusal


async def _stream_body(first: bytes, receive: Receive, limit: int, state: RequestBody) -> AsyncIterator[bytes]:
    """Relay the request body from ASGI to aiohttp, refusing to pass more than `limit` bytes."""
    received = len(first)
    if first:
        yield first
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            state.too_large = True
            raise BodyTooLarge
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            state.done = True
            return


class FreshConnector(aiohttp.TCPConnector):
    """A keep-alive pool that never writes a request to a connection the upstream already closed.

    An upstream may close an idle connection (its keep-alive timeout, a restart, an error) just as the
    gateway picks it from the pool: its FIN or RST is already in the socket, but the event loop has not
    read it yet. Writing the request there fails it with a 502 although the upstream is fine. So each
    pooled connection is peeked at before use; a closed one is dropped and another (in the end a new)
    connection is taken. Nothing was sent on the dropped one, so this can never send a request twice,
    whatever its method; a connection that fails after the request was written is never retried here.
    """

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's own signature
    ) -> Connection:
        for _ in range(_MAX_STALE):
            connection = await super().connect(req, traces, timeout)
            if not closed_by_peer(connection):
                return connection
            STALE_CONNECTIONS.inc()
            connection.close()  # closes the socket: it does not go back to the pool
        return await super().connect(req, traces, timeout)


def closed_by_peer(connection: Connection) -> bool:
    """Whether the peer closed (or wrote to) an idle connection: one non-blocking peek, nothing consumed."""
    transport = connection.transport
    if transport is None or transport.is_closing():
        return True
    raw = transport.get_extra_info("socket")
    if raw is None:
        return False
    probe = socket.socket(raw.family, raw.type, raw.proto, raw.fileno())
    try:
        probe.recv(1, _PEEK)
        return True  # EOF (b"") or bytes nobody asked for: not reusable
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: the connection is idle and open
    except OSError:
        return True  # reset
    finally:
        probe.detach()  # the socket stays the transport's
