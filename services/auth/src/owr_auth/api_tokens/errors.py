"""API token errors; none of them carries a token or a hash."""

from __future__ import annotations

from owr_shared.errors import NotFound


class TokenNotFound(NotFound):
    slug, title = "token-not-found", "Token Not Found"
    default_detail = "No API token with this id belongs to you."
