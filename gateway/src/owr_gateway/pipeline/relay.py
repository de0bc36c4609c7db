"""Step 5, relay: the upstream's answer to the client, minus hop-by-hop headers and internal addresses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp
from starlette.types import Receive, Send

from owr_gateway.pipeline.forward import CLIENT_CLOSED, RequestBody, connection_tokens
from owr_gateway.pipeline.problems import SECURITY_HEADER_NAMES, Exchange, Header

# Response headers not passed back: hop-by-hop, and what the gateway sets itself (an upstream's
# Retry-After passes: a locked login or a 503 must still tell the client when to come back).
_RESPONSE_DROP = frozenset(
    {
        *SECURITY_HEADER_NAMES,
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


class Relay:
    """Pass an upstream response on, rewriting an upstream's absolute redirects to itself."""

    def __init__(self, upstream_bases: dict[str, str]) -> None:
        self._upstream_bases = {name: url.encode() for name, url in upstream_bases.items()}

    def response_headers(self, upstream: str, raw: Iterable[tuple[bytes, bytes]]) -> list[Header]:
        """The upstream's end-to-end headers, with `Location` made public."""
        headers: list[Header] = []
        upstream_connection = False
        for key, value in raw:
            lowered = key.lower()
            if lowered in _RESPONSE_DROP:
                upstream_connection = upstream_connection or lowered == b"connection"
                continue
            if lowered == b"location":
                value = self.public_location(upstream, value)
            headers.append((key, value))
        if upstream_connection:
            listed: set[str] = set()
            for name, value in raw:
                if name.lower() == b"connection":
                    listed |= connection_tokens(value)
            headers = [(k, v) for k, v in headers if k.decode("latin-1").lower() not in listed]
        return headers

    def public_location(self, upstream: str, value: bytes) -> bytes:
        """An upstream's absolute redirect to itself becomes relative: no internal host or port leaks."""
        base = self._upstream_bases[upstream]
        if value.startswith(base) and value[len(base) : len(base) + 1] in (b"/", b"?", b""):
            return value[len(base) :] or b"/"
        return value

    async def relay(
        self,
        response: aiohttp.ClientResponse,
        upstream: str,
        limit_headers: list[Header],
        exchange: Exchange,
        send: Send,
        receive: Receive,
        body: RequestBody,
    ) -> None:
        """Stream `response` to the client, with the request id and the rate limit's headers added."""
        disconnected: asyncio.Future[None] | None = None
        try:
            headers = self.response_headers(upstream, response.raw_headers)
            headers.append(exchange.rid_header)
            headers.extend(limit_headers)
            headers.extend(exchange.security)
            exchange.status = response.status
            exchange.started = True
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
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
                    exchange.status = CLIENT_CLOSED
                    response.close()
                    return
        except BaseException:
            response.close()
            raise
        finally:
            if disconnected is not None:
                disconnected.cancel()
        response.release()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # an (empty) request body message that nobody read yet
