"""Gateway metrics (`owr_` prefix). Labels are bounded enums; never a user id, token or address."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from owr_shared.metrics import HTTP_DURATION, HTTP_REQUESTS

SERVICE = "gateway"

RATELIMIT_DECISIONS = Counter(
    "owr_ratelimit_decisions_total",
    "Rate-limit decisions at the gateway.",
    ["policy", "decision", "backend"],
)
RATELIMIT_BACKEND_ERRORS = Counter(
    "owr_ratelimit_backend_errors_total",
    "Rate-limit calls to Redis that failed or timed out.",
)
UPSTREAM_ERRORS = Counter(
    "owr_gateway_upstream_errors_total",
    "Upstream calls that failed before a response arrived.",
    ["upstream", "kind"],
)
STALE_CONNECTIONS = Counter(
    "owr_gateway_upstream_stale_connections_total",
    "Pooled upstream connections found closed by the upstream before a request was written to them.",
)
JWT_CACHE = Counter(
    "owr_gateway_jwt_cache_total",
    "Verified-token cache lookups.",
    ["result"],
)
JWT_CACHE_HIT = JWT_CACHE.labels("hit")
JWT_CACHE_MISS = JWT_CACHE.labels("miss")


class HttpMetrics:
    """Cache label children so the hot path pays one dict lookup instead of `labels()`."""

    __slots__ = ("_counters", "_histograms")

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = HTTP_REQUESTS.labels(SERVICE, route, method, str(status))
        counter.inc()
        hkey = (route, method)
        histogram = self._histograms.get(hkey)
        if histogram is None:
            histogram = self._histograms[hkey] = HTTP_DURATION.labels(SERVICE, route, method)
        histogram.observe(seconds)
