"""The trace a job runs in: W3C `traceparent`, request id, and the log context bound for its lines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import structlog

from owr_shared.context import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    new_traceparent,
    parse_traceparent,
    request_id_var,
    sanitize_request_id,
    trace_id_var,
)


@dataclass(frozen=True, slots=True)
class JobTrace:
    """The job's own span: `traceparent` continues the caller's trace (or starts one for cron jobs)."""

    traceparent: str
    trace_id: str
    request_id: str


traceparent_var: ContextVar[str | None] = ContextVar("worker_traceparent", default=None)


def start_trace(traceparent: str | None, request_id: str | None) -> JobTrace:
    """A new span under the given parent; a missing or malformed parent starts a new trace."""
    parsed = parse_traceparent(traceparent)
    own = new_traceparent(parsed[0] if parsed else None)
    trace_id = own.split("-")[1]
    return JobTrace(traceparent=own, trace_id=trace_id, request_id=sanitize_request_id(request_id))


@contextmanager
def job_context(job: str, *, traceparent: str | None, request_id: str | None, **fields: str) -> Iterator[JobTrace]:
    """Bind `job`, `trace_id`, `request_id` and `fields` (e.g. `key_id`) to every log line of the job."""
    trace = start_trace(traceparent, request_id)
    tokens = (
        traceparent_var.set(trace.traceparent),
        trace_id_var.set(trace.trace_id),
        request_id_var.set(trace.request_id),
    )
    try:
        with structlog.contextvars.bound_contextvars(job=job, trace_id=trace.trace_id, **fields):
            yield trace
    finally:
        request_id_var.reset(tokens[2])
        trace_id_var.reset(tokens[1])
        traceparent_var.reset(tokens[0])


def outgoing_headers(*, with_request_id: bool = True) -> dict[str, str]:
    """Headers that carry the current job's trace (and request id) to the service being called."""
    headers: dict[str, str] = {}
    traceparent = traceparent_var.get()
    if traceparent is not None:
        headers[TRACEPARENT_HEADER] = traceparent
    request_id = request_id_var.get()
    if with_request_id and request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return headers
