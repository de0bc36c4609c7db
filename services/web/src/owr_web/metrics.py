"""Web's Prometheus metrics (`owr_web_` prefix); the HTTP ones come from owr_shared."""

from __future__ import annotations

from prometheus_client import Counter

API_CALLS = Counter("owr_web_api_calls_total", "Calls of the public API made for pages, by outcome.", ["outcome"])
SESSIONS = Counter(
    "owr_web_sessions_total", "Session events: started, refreshed, expired, ended, refused (CSRF).", ["event"]
)
for _outcome in ("2xx", "3xx", "4xx", "5xx", "unavailable"):
    API_CALLS.labels(_outcome)
for _event in ("started", "refreshed", "expired", "ended", "csrf_refused"):
    SESSIONS.labels(_event)
