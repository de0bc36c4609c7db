"""Service-token errors; none of them says which half of the credentials was wrong."""

from __future__ import annotations

from owr_shared.errors import Forbidden, Unauthorized


class InvalidClient(Unauthorized):
    """Unknown client and wrong secret answer with this one body."""

    slug, title = "invalid-client", "Invalid Client"
    default_detail = "The client credentials are invalid."


class InvalidScope(Forbidden):
    slug, title = "invalid-scope", "Invalid Scope"
    default_detail = "The requested scope is not allowed for this client."


class AudienceNotAllowed(Forbidden):
    slug, title = "audience-not-allowed", "Audience Not Allowed"
    default_detail = "The client may not obtain tokens for this audience."
