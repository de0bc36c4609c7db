"""Errors as pages: every `ProblemError` (web's own and the API's) becomes an HTML page with its status;
a signed-out visitor is sent to sign in (htmx requests through `HX-Redirect`)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from owr_shared.errors import ProblemError
from owr_shared.logging import get_logger
from owr_web.sessions.errors import SignedOut
from owr_web.views.pages import Pages

log = get_logger(__name__)


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.method != "GET" or target in ("/login", "/logout"):
        target = "/"
    location = "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def install_page_handlers(app: FastAPI, pages: Pages) -> None:
    """Replace the JSON problem handlers of `create_service_app` with pages."""

    def page(request: Request, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
        context = {"title": title, "detail": detail, "status": status}
        return pages.render(request, "error.html", context, status=status, headers=headers)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        if isinstance(exc, SignedOut):
            return login_redirect(request)
        return page(request, exc.status, exc.title, exc.detail, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        return page(request, 422, "Not Valid", "The request is not valid. Go back, check the form and try again.")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return page(request, 404, "Not Found", "There is no page here.")
        return page(
            request, exc.status_code, "Request Refused", "This request cannot be served.", dict(exc.headers or {})
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return page(request, 500, "Something Went Wrong", "An unexpected error occurred. Try again.")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
