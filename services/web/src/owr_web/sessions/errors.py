"""Session errors: rendered by `views.errors` as a redirect to sign in, or a 403 page."""

from __future__ import annotations

from owr_shared.errors import Forbidden, ProblemError, Unauthorized


class SignedOut(Unauthorized):
    """No live session (none, expired, idle too long, or its tokens were revoked): sign in again."""

    slug, title = "signed-out", "Signed Out"
    default_detail = "Your session has ended. Sign in again."


class CsrfRefused(Forbidden):
    """A state-changing request without the session's CSRF token (a form field or `X-CSRF-Token`)."""

    slug, title = "csrf-refused", "Request Refused"
    default_detail = "This form has expired or did not come from this site. Reload the page and try again."


class SessionStoreUnavailable(ProblemError):
    """Redis, which holds the sessions, did not answer."""

    status, slug, title = 503, "sessions-unavailable", "Temporarily Unavailable"
    default_detail = "Signing in is not possible right now. Try again in a few seconds."
    default_headers = {"Retry-After": "5"}
