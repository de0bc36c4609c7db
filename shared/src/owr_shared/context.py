"""Per-request context (request id, trace id) carried in contextvars, plus W3C traceparent helpers."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
TRACEPARENT_HEADER = "traceparent"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("trace_id", default=None)

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id() -> str:
    return secrets.token_hex(16)


def sanitize_request_id(value: str | None) -> str:
    """Keep a caller's request id only if it is short and harmless; otherwise mint one."""
    if value and _REQUEST_ID.match(value):
        return value
    return new_request_id()


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return (trace_id, parent_span_id) from a valid W3C traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    version, trace_id, span_id, _flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def new_traceparent(trace_id: str | None = None) -> str:
    """A traceparent for a new span, continuing `trace_id` when given."""
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
