"""Step 2, route: the public route a path belongs to, and whether the request suits it before any I/O."""

from __future__ import annotations

from owr_gateway.pipeline.incoming import Incoming
from owr_gateway.pipeline.problems import CLOSE, Refusal, too_large
from owr_gateway.pipeline.screen import NO_ROUTE
from owr_gateway.routing import Route, RouteTable
from owr_shared.errors import BAD_REQUEST, METHOD_NOT_ALLOWED, NOT_FOUND

NO_BODY = -1  # no Content-Length: no body, or a chunked one
WEB = "web"
# Paths that are never the web dashboard's, even when no API route matches them.
_NOT_WEB = ("/api", "/.well-known", "/docs", "/health", "/metrics", "/internal")
# Every other path goes to web: unauthenticated at the gateway (web keeps its own sessions), its own limit.
WEB_ROUTE = Route(prefix="/", upstream=WEB, requires_jwt=False, policy=WEB, methods=None, allow_header=b"")


def is_web_path(path: str) -> bool:
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in _NOT_WEB)


class Router:
    """Match the route table, then check the method, the Authorization header and the declared length."""

    def __init__(self, routes: RouteTable, max_body: int, *, web: bool = False) -> None:
        self._routes = routes
        self._max_body = max_body
        self._web = web

    def match(self, path: str) -> Route:
        route = self._routes.match(path)
        if route is None:
            if self._web and is_web_path(path):
                return WEB_ROUTE
            raise Refusal(NOT_FOUND, NO_ROUTE)
        return route

    def check(self, route: Route, method: str, incoming: Incoming) -> int:
        """The declared body length (NO_BODY when none is declared), or the refusal of the request."""
        if incoming.duplicate_authorization:
            raise Refusal(BAD_REQUEST, "Send at most one Authorization header.")
        if route.methods is not None and method not in route.methods:
            allow = (b"allow", route.allow_header)
            raise Refusal(METHOD_NOT_ALLOWED, "This method is not allowed on this path.", (allow,))
        declared = incoming.content_length
        if declared is None:
            return NO_BODY
        if incoming.chunked or not declared.isdigit():
            raise Refusal(BAD_REQUEST, "The Content-Length header is not valid.", (CLOSE,))
        content_length = int(declared)
        if content_length > self._max_body:
            raise too_large(self._max_body)
        return content_length
