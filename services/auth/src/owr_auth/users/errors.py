"""User errors."""

from __future__ import annotations

from owr_shared.errors import (
    INVALID_TOKEN,
    VALIDATION_ERROR,
    Conflict,
    Forbidden,
    ProblemError,
    Unauthorized,
    field_errors,
)

_INVALID_EMAIL = "The email address is not valid."


class InvalidEmail(ProblemError):
    status, slug, title = VALIDATION_ERROR

    def __init__(self) -> None:
        super().__init__(_INVALID_EMAIL, errors=field_errors("body", "email", _INVALID_EMAIL, "email_invalid"))


class EmailTaken(Conflict):
    """Registering an existing address; revealing that is accepted for registration."""

    slug, title = "email-taken", "Email Already Registered"
    default_detail = "An account with this email address already exists."


class WrongCurrentPassword(Forbidden):
    slug, title = "wrong-current-password", "Wrong Current Password"
    default_detail = "The current password is incorrect."


class AccountGone(Unauthorized):
    """A valid token whose user was deleted, or which predates the user's last password change."""

    status, slug, title = INVALID_TOKEN
    default_detail = "The token no longer grants access to an account."
