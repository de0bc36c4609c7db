"""What a call of the public API can end in, as web's own problems (rendered as pages by `views`)."""

from __future__ import annotations

from typing import Any, Self

from owr_shared.errors import RETRY_SOON, NotFound, ProblemError, ServiceUnavailable

# A `Retry-After` beyond this is not echoed: the page asks to try again soon instead.
RETRY_AFTER_MAX = 3600


def retry_seconds(value: str | None) -> int | None:
    """The seconds of a `Retry-After` given as a number (an HTTP date is not worth a page's words)."""
    if value is None or not value.strip().isdigit():
        return None
    seconds = int(value.strip())
    return seconds if 0 < seconds <= RETRY_AFTER_MAX else None


class ApiProblem(ProblemError):
    """The API refused the request (4xx other than 401 and 404): its problem's title and detail are shown."""

    status, slug, title = 400, "api-refused", "Request Refused"

    def __init__(self, status: int, body: dict[str, Any], *, retry_after: str | None = None) -> None:
        self.status = status if 400 <= status < 500 else 400
        self.title = str(body.get("title") or self.title)
        detail = body.get("detail")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        seconds = retry_seconds(retry_after)
        headers = {"Retry-After": str(seconds)} if seconds else None
        super().__init__(str(detail) if detail else None, errors=errors or None, headers=headers)

    def field_errors(self) -> dict[str, str]:
        """The 422's messages by the body field they blame, dotted (`scope.id`, `thresholds.0`); the first
        message of a field wins. A problem without `errors` blames no field."""
        fields: dict[str, str] = {}
        for error in self.errors or []:
            location = [str(part) for part in error.get("loc") or [] if part != "body"]
            message = str(error.get("msg") or "").removeprefix("Value error, ")
            if location and message:
                fields.setdefault(".".join(location), message)
        return fields


class PageNotFound(NotFound):
    slug, title = "page-not-found", "Not Found"
    default_detail = "There is nothing here, or it belongs to another workspace."


class ApiUnavailable(ServiceUnavailable):
    """The API did not answer in time or answered 5xx: the page says so and asks to try again."""

    slug, title = "api-unavailable", "Temporarily Unavailable"
    default_detail = "The figures cannot be loaded right now. Try again in a few seconds."
    default_headers = RETRY_SOON

    @classmethod
    def after(cls, retry_after: str | None) -> Self:
        """The API's own `Retry-After` (a 503 of an overloaded service) said on the page and passed on."""
        seconds = retry_seconds(retry_after)
        if seconds is None:
            return cls()
        unit = "second" if seconds == 1 else "seconds"
        return cls(
            f"The service is busy right now. Try again in {seconds} {unit}.", headers={"Retry-After": str(seconds)}
        )
