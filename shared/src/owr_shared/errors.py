"""RFC 9457 problem details: one error base class, mapped to HTTP by one set of handlers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

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


class ProblemError(Exception):
    """Base of every error a service raises on purpose; rendered as problem+json.

    Subclasses set `status`, `slug` and `title`; `detail` is per occurrence and must never carry a
    secret or an echo of user input that could hold one.
    """

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.errors = errors


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not Found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kw: Any) -> None:
        headers = dict(kw.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(detail, headers=headers, **kw)


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


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


_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Never echo the offending input back: it may be a password or a key.
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


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
            return problem_response(
                400,
                title="Malformed JSON",
                detail="The request body is not valid JSON.",
                slug="malformed-json",
                instance=request.url.path,
            )
        return problem_response(
            422,
            title="Validation Error",
            detail="The request is not valid.",
            slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(
            exc.status_code,
            headers=dict(exc.headers or {}),
            detail=detail,
            slug=_STATUS_SLUGS.get(exc.status_code),
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return problem_response(
            500,
            title="Internal Server Error",
            detail="An unexpected error occurred.",
            slug="internal-error",
            instance=request.url.path,
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
