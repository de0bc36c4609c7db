"""Password errors; none of them ever carries the password."""

from __future__ import annotations

from owr_shared.errors import ProblemError, field_errors


class PasswordPolicyViolation(ProblemError):
    """422 naming the broken rule, e.g. `password_too_short`, in its `errors` entry."""

    status, slug, title = 422, "password-policy", "Password Not Accepted"

    def __init__(self, *, field: str, rule: str, message: str) -> None:
        super().__init__(message, errors=field_errors("body", field, message, rule))
        self.rule = rule
