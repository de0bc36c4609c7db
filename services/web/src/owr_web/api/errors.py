"""What a call of the public API can end in, as web's own problems (rendered as pages by `views`)."""

from __future__ import annotations

from typing import Any

from owr_shared.errors import RETRY_SOON, NotFound, ProblemError, ServiceUnavailable


class ApiProblem(ProblemError):
    """The API refused the request (4xx other than 401 and 404): its problem's title and detail are shown."""

    status, slug, title = 400, "api-refused", "Request Refused"

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status if 400 <= status < 500 else 400
        self.title = str(body.get("title") or self.title)
        detail = body.get("detail")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        super().__init__(str(detail) if detail else None, errors=errors or None)


class PageNotFound(NotFound):
    slug, title = "page-not-found", "Not Found"
    default_detail = "There is nothing here, or it belongs to another workspace."


class ApiUnavailable(ServiceUnavailable):
    """The API did not answer in time or answered 5xx: the page says so and asks to try again."""

    slug, title = "api-unavailable", "Temporarily Unavailable"
    default_detail = "The figures cannot be loaded right now. Try again in a few seconds."
    default_headers = RETRY_SOON
