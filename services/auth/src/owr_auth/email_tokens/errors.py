"""Errors of emailed links. Both say what to do next; neither says whether an account exists."""

from __future__ import annotations

from owr_shared.errors import BadRequest, ProblemError


class InvalidLink(BadRequest):
    """Not a link auth issued: malformed, unknown, or replaced by a newer email of the same request."""

    slug, title = "invalid-link", "Invalid Link"
    default_detail = "This link is not valid. Ask for a new email and use the link in the newest one."


class LinkExpired(ProblemError):
    """A link auth issued that has expired, was used already, or was outdated by a later password change."""

    status, slug, title = 410, "link-expired", "Link Expired"
    default_detail = "This link has expired or has been used already. Ask for a new email."
