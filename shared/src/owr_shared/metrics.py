"""Prometheus metrics shared by every process (`owr_` prefix, base units, no user data in labels)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "owr_http_requests_total",
    "HTTP requests served, by route template.",
    ["service", "route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "owr_http_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)
UNMATCHED_ROUTE = "<unmatched>"


async def metrics_endpoint(_request: Request) -> Response:
    """Serve the process's registry in the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
