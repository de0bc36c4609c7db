"""The routing table: longest segment-aware prefix match over a dict, O(path segments) per request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from owr_gateway.settings import RouteConfig


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    upstream: str
    requires_jwt: bool
    policy: str
    methods: frozenset[str] | None
    allow_header: bytes  # precomputed for 405 answers


WILDCARD = "*"


class RouteTable:
    """`/api/v1/keys` matches `/api/v1/keys` and `/api/v1/keys/...`, never `/api/v1/keysx`. A `*` segment matches
    any one segment (`/api/v1/keys/*/upstream`: a path of another service under one of keys' objects); the longest
    prefix wins, and at equal length an exact prefix beats a pattern."""

    def __init__(self, routes: Iterable[RouteConfig]) -> None:
        self._by_prefix: dict[str, Route] = {}
        # Patterns by segment count: few, and each tried only against candidates of its length.
        self._patterns: dict[int, list[tuple[tuple[str, ...], Route]]] = {}
        for config in routes:
            methods = config.methods
            allow = ", ".join(sorted(methods)).encode() if methods else b""
            self._by_prefix[config.prefix] = Route(
                prefix=config.prefix,
                upstream=config.upstream,
                requires_jwt=config.auth == "jwt",
                policy=config.policy,
                methods=methods,
                allow_header=allow,
            )
            if WILDCARD in config.prefix.split("/"):
                segments = tuple(config.prefix.split("/"))
                self._patterns.setdefault(len(segments), []).append((segments, self._by_prefix[config.prefix]))

    def match(self, path: str) -> Route | None:
        table = self._by_prefix
        candidate = path
        while candidate:
            route = table.get(candidate)
            if route is not None:
                return route
            if self._patterns:
                route = self._pattern_match(candidate)
                if route is not None:
                    return route
            cut = candidate.rfind("/")
            if cut <= 0:
                return None
            candidate = candidate[:cut]
        return None

    def _pattern_match(self, candidate: str) -> Route | None:
        segments = candidate.split("/")
        for pattern, route in self._patterns.get(len(segments), ()):
            if all(p == s or (p == WILDCARD and s) for p, s in zip(pattern, segments, strict=True)):
                return route
        return None

    @property
    def routes(self) -> list[Route]:
        return list(self._by_prefix.values())
