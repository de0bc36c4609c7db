"""API token errors; none of them carries a token or a hash."""

from __future__ import annotations

from owr_shared.errors import VALIDATION_ERROR, Conflict, NotFound, ProblemError


class TokenNotFound(NotFound):
    slug, title = "token-not-found", "Token Not Found"
    default_detail = "No API token with this id belongs to you."


class RateLimitAboveUsers(ProblemError):
    """A token may not be given a higher limit than its user has: it would escape the user's bucket."""

    status, slug, title = VALIDATION_ERROR

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"rate_limit_per_minute may be at most {cap}, the per-user limit.",
            errors=[
                {
                    "loc": ["body", "rate_limit_per_minute"],
                    "msg": f"must be at most {cap}",
                    "type": "rate_limit_above_user_limit",
                }
            ],
        )


class TooManyTokens(Conflict):
    slug, title = "too-many-tokens", "Too Many API Tokens"

    def __init__(self, cap: int) -> None:
        super().__init__(f"You already hold {cap} live API tokens, the most allowed; revoke one first.")
