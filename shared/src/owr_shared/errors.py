"""RFC 9457 problem details: one vocabulary of problem types, one error base class, one set of handlers.

The vocabulary below is the single list of the generic problems (status, slug, title): the
ProblemError subclasses take theirs from it, and so do the gateway's own answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar, NamedTuple

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from owr_shared.context import request_id_var
from owr_shared.logging import get_logger

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://openrouter-watcher.dev/problems/"

log = get_logger(__name__)


class ProblemType(NamedTuple):
    """One kind of problem: its HTTP status, the slug of its `type` URI, and its title."""

    status: int
    slug: str
    title: str


BAD_REQUEST = ProblemType(400, "bad-request", "Bad Request")
MALFORMED_JSON = ProblemType(400, "malformed-json", "Malformed JSON")
UNAUTHORIZED = ProblemType(401, "unauthorized", "Unauthorized")
INVALID_TOKEN = ProblemType(401, "invalid-token", "Invalid Token")
FORBIDDEN = ProblemType(403, "forbidden", "Forbidden")
NOT_FOUND = ProblemType(404, "not-found", "Not Found")
METHOD_NOT_ALLOWED = ProblemType(405, "method-not-allowed", "Method Not Allowed")
CONFLICT = ProblemType(409, "conflict", "Conflict")
PAYLOAD_TOO_LARGE = ProblemType(413, "payload-too-large", "Content Too Large")
UNSUPPORTED_MEDIA_TYPE = ProblemType(415, "unsupported-media-type", "Unsupported Media Type")
VALIDATION_ERROR = ProblemType(422, "validation-error", "Validation Error")
RATE_LIMITED = ProblemType(429, "rate-limited", "Too Many Requests")
CONCURRENCY_LIMITED = ProblemType(429, "concurrency-limited", "Too Many Concurrent Requests")
INTERNAL_ERROR = ProblemType(500, "internal-error", "Internal Server Error")
UPSTREAM_UNAVAILABLE = ProblemType(502, "upstream-unavailable", "Bad Gateway")
SERVICE_UNAVAILABLE = ProblemType(503, "service-unavailable", "Service Unavailable")
OVERLOADED = ProblemType(503, "overloaded", "Service Overloaded")
QUERY_TIMEOUT = ProblemType(503, "query-timeout", "Query Timed Out")
DATABASE_UNAVAILABLE = ProblemType(503, "database-unavailable", "Database Unavailable")
UPSTREAM_TIMEOUT = ProblemType(504, "upstream-timeout", "Gateway Timeout")

# The problem a bare status stands for (a framework's HTTP error carries nothing else).
PROBLEM_BY_STATUS = {
    problem.status: problem
    for problem in (
        BAD_REQUEST,
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        CONFLICT,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        VALIDATION_ERROR,
        RATE_LIMITED,
    )
}


class ProblemError(Exception):
    """Base of every error a service raises on purpose; rendered as problem+json.

    Subclasses set `status`, `slug` and `title`, and an error with one fixed message sets
    `default_detail` (and `default_headers`) instead of writing an `__init__`. `detail` must never
    carry a secret or an echo of user input that could hold one.
    """

    status: int = INTERNAL_ERROR.status
    slug: str = INTERNAL_ERROR.slug
    title: str = INTERNAL_ERROR.title
    # The detail when the raiser gives none, and headers every occurrence carries (under the raiser's).
    default_detail: ClassVar[str | None] = None
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail or self.title
        super().__init__(self.detail)
        self.headers = {**self.default_headers, **(headers or {})}
        self.errors = errors

    @property
    def problem(self) -> ProblemType:
        return ProblemType(self.status, self.slug, self.title)


class BadRequest(ProblemError):
    status, slug, title = BAD_REQUEST


class Unauthorized(ProblemError):
    status, slug, title = UNAUTHORIZED
    default_headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ProblemError):
    status, slug, title = FORBIDDEN


class NotFound(ProblemError):
    status, slug, title = NOT_FOUND


class Conflict(ProblemError):
    status, slug, title = CONFLICT


class TooManyRequests(ProblemError):
    status, slug, title = RATE_LIMITED

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(detail, headers=headers, **kw)


class ServiceUnavailable(ProblemError):
    status, slug, title = SERVICE_UNAVAILABLE


# What a 503 for a passing fault tells the client: try again in a few seconds.
RETRY_SOON = {"Retry-After": "5"}


def field_errors(location: str, field: str, message: str, error_type: str) -> list[dict[str, Any]]:
    """The `errors` list of a 422 that blames one field, shaped like a validation error's."""
    return [{"loc": [location, field], "msg": message, "type": error_type}]


def problem_body(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> bytes:
    """Serialize a problem document; shared by FastAPI services and the raw-ASGI gateway."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug if slug else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
    }
    if instance is not None:
        body["instance"] = instance
    body["request_id"] = request_id if request_id is not None else request_id_var.get()
    if errors is not None:
        body["errors"] = errors
    return orjson.dumps(body)


def problem_response(status: int, *, headers: dict[str, str] | None = None, **fields: Any) -> Response:
    return Response(
        content=problem_body(status, **fields),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the offending input back: it may be a password or a key.
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def _answer(request: Request, problem: ProblemType, detail: str, **fields: Any) -> Response:
    return problem_response(
        problem.status, title=problem.title, slug=problem.slug, detail=detail, instance=request.url.path, **fields
    )


def render_problem(exc: ProblemError, request: Request) -> Response:
    """The problem+json response for `exc`, exactly as the exception handler renders it.

    Also for refusals that changed state on purpose (a revoked token family): raising through
    `DbSession` would roll that change back, so such endpoints return this response instead.
    """
    return problem_response(
        exc.status,
        headers=exc.headers,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        instance=request.url.path,
        errors=exc.errors,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map ProblemError, validation errors, HTTP errors and anything unexpected to problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return render_problem(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return _answer(request, MALFORMED_JSON, "The request body is not valid JSON.")
        return _answer(request, VALIDATION_ERROR, "The request is not valid.", errors=errors)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        known = PROBLEM_BY_STATUS.get(exc.status_code)
        # The title stays the status's own phrase: the framework's error says no more than its status.
        return problem_response(
            exc.status_code,
            headers=dict(exc.headers or {}),
            detail=detail,
            slug=known.slug if known else None,
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return _answer(request, INTERNAL_ERROR, "An unexpected error occurred.")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
