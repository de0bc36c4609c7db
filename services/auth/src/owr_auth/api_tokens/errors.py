"""API token errors; none of them carries a token or a hash."""

from __future__ import annotations

from owr_shared.errors import NotFound


class TokenNotFound(NotFound):
    slug, title = "token-not-found", "Token Not Found"

    def __init__(self) -> None:
        super().__init__("No API token with this id belongs to you.")
