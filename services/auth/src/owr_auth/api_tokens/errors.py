"""API token errors; none of them carries a token or a hash."""

from __future__ import annotations

from owr_shared.errors import Forbidden, NotFound


class TokenNotFound(NotFound):
    slug, title = "token-not-found", "Token Not Found"

    def __init__(self) -> None:
        super().__init__("No API token with this id belongs to you.")


class SessionRequired(Forbidden):
    """Tokens are managed from a signed-in session, never with another API token."""

    slug, title = "session-required", "Session Required"

    def __init__(self) -> None:
        super().__init__("API tokens are managed with a signed-in session, not with an API token.")
