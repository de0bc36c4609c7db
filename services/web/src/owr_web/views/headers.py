"""Security headers on every web response (pure ASGI): the gateway sets them too; web keeps them when
reached directly (development, tests) and for its static files."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from owr_shared.middleware import PAGE_SECURITY_HEADERS

# owr_shared's page headers (the gateway sends the same), and no cross-origin window may reach ours.
SECURITY_HEADERS = (*PAGE_SECURITY_HEADERS, (b"cross-origin-opener-policy", b"same-origin"))
_NAMES = {name for name, _ in SECURITY_HEADERS}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message["headers"] = kept + list(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)
