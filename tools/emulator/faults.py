"""Injected trouble: added latency, error statuses (with OpenRouter's and Cloudflare's bodies) and hangs.

One configuration at a time (`PUT /_admin/faults` replaces it). `latency_ms` delays every matching API
request until cleared; `status` or `hang` fail the next `count` matching requests (all of them when `count`
is absent) and then the emulator is healthy again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tools.emulator.state import to_us
from tools.emulator.wire import dumps

FAULT_STATUSES = frozenset({402, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
LIMIT_SOURCES = frozenset({"openrouter_credits", "openrouter_key_limit"})
RATE_LIMIT = 20  # what X-RateLimit-Limit announces; nothing else depends on it
_CLOUDFLARE_TITLES = {
    502: "Bad gateway",
    504: "Gateway time-out",
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


@dataclass
class Faults:
    """The active fault configuration (see the module docstring)."""

    latency_ms: int = 0
    status: int | None = None
    hang: bool = False
    count: int | None = None
    retry_after: int | None = None
    paths: tuple[str, ...] | None = None
    limit_source: str = "openrouter_credits"

    @classmethod
    def parse(cls, body: Any) -> Faults:
        """Validate `PUT /_admin/faults`'s body; ValueError with a readable message otherwise."""
        if not isinstance(body, dict):
            raise ValueError("body must be an object")
        latency = body.get("latency_ms", 0) or 0
        status = body.get("status")
        count = body.get("count")
        retry_after = body.get("retry_after")
        hang = body.get("hang", False)
        paths = body.get("paths")
        limit_source = body.get("limit_source", "openrouter_credits")
        if not _is_int(latency) or latency < 0:
            raise ValueError("latency_ms must be a non-negative integer")
        if status is not None and status not in FAULT_STATUSES:
            raise ValueError(f"status must be one of {sorted(FAULT_STATUSES)}")
        if count is not None and (not _is_int(count) or count < 1):
            raise ValueError("count must be a positive integer")
        if retry_after is not None and (not _is_int(retry_after) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer (seconds)")
        if not isinstance(hang, bool):
            raise ValueError("hang must be a boolean")
        if paths is not None and (not isinstance(paths, list) or not all(isinstance(p, str) for p in paths)):
            raise ValueError("paths must be a list of API paths such as /key")
        if limit_source not in LIMIT_SOURCES:
            raise ValueError(f"limit_source must be one of {sorted(LIMIT_SOURCES)}")
        return cls(
            latency_ms=latency,
            status=status,
            hang=hang,
            count=count,
            retry_after=retry_after,
            paths=tuple("/" + p.strip("/") for p in paths) if paths is not None else None,
            limit_source=limit_source,
        )

    def to_json(self) -> dict[str, Any]:
        """The configuration as the admin API shows it (`count` is what is left)."""
        return {
            "latency_ms": self.latency_ms,
            "status": self.status,
            "hang": self.hang,
            "count": self.count,
            "retry_after": self.retry_after,
            "paths": list(self.paths) if self.paths is not None else None,
            "limit_source": self.limit_source,
        }

    def matches(self, api_path: str) -> bool:
        """Does this configuration apply to an API path (relative to /api/v1)? `/keys` covers `/keys/{hash}`."""
        if self.paths is None:
            return True
        return any(api_path == p or api_path.startswith(p + "/") for p in self.paths)

    def take_failure(self) -> bool:
        """Should this (matching) request fail? Consumes one of `count`."""
        if self.status is None and not self.hang:
            return False
        if self.count is None:
            return True
        if self.count <= 0:
            return False
        self.count -= 1
        return True


def fault_reply(faults: Faults, now: datetime) -> tuple[int, dict[str, str], str, str]:
    """Status, headers, body and content type of an injected failure, shaped like the live one."""
    status = faults.status or 500
    headers: dict[str, str] = {}
    if faults.retry_after is not None:
        headers["Retry-After"] = str(faults.retry_after)
    if status == 429:
        reset_ms = to_us(now) // 1000 + 1000 * (faults.retry_after if faults.retry_after is not None else 10)
        headers |= {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset_ms),
        }
        return status, headers, _error(429, "Rate limit exceeded", {"error_type": "rate_limit_exceeded"}), "json"
    if status == 402:
        message = "Insufficient credits. Add more using https://openrouter.ai/credits"
        return status, headers, _error(402, message, {"limit_source": faults.limit_source}), "json"
    if status in _CLOUDFLARE_TITLES:
        return status, headers, _cloudflare_page(status), "html"
    messages = {500: "Internal Server Error", 503: "Service Unavailable"}
    return status, headers, _error(status, messages.get(status, "Upstream error"), None), "json"


def _error(code: int, message: str, metadata: dict[str, str] | None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    return dumps({"error": error})


def _cloudflare_page(status: int) -> str:
    title = _CLOUDFLARE_TITLES[status]
    return (
        '<!DOCTYPE html>\n<html lang="en-US"><head><title>openrouter.ai | '
        f'{status}: {title}</title></head>\n<body><div id="cf-wrapper"><h1>{title}</h1>'
        f'<span class="cf-error-code">Error code {status}</span>'
        "<p>Visit cloudflare.com for more information.</p></div></body></html>\n"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Stats:
    """API request counts since the last reset, by route and by status."""

    requests: dict[str, int]
    by_status: dict[str, int]

    @classmethod
    def empty(cls) -> Stats:
        return cls({}, {})

    def record(self, route: str, status: int) -> None:
        self.requests[route] = self.requests.get(route, 0) + 1
        self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
