"""Outbound-mail errors."""

from __future__ import annotations

from owr_shared.errors import RETRY_SOON, NotFound, ProblemError, ServiceUnavailable, TooManyRequests


class MailGone(ProblemError):
    """The mail is not to be sent (any more): sent already, given up, or no longer wanted (the address was
    verified meanwhile, the account is gone). The worker drops its job."""

    status, slug, title = 410, "mail-gone", "Mail Not To Be Sent"
    default_detail = "This mail has been sent, has failed or is no longer wanted."


class MailNotFound(NotFound):
    slug, title = "mail-not-found", "Mail Not Found"
    default_detail = "There is no such mail."


class MailThrottled(TooManyRequests):
    slug, title = "too-many-emails", "Too Many Emails"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many emails were asked for; try again later.", retry_after=retry_after)


class MailUnavailable(ServiceUnavailable):
    """The limits' store is unreachable: the request is refused rather than left unlimited."""

    slug, title = "mail-unavailable", "Email Unavailable"
    default_detail = "Emails cannot be sent right now; try again shortly."
    default_headers = RETRY_SOON
