"""User errors."""

from __future__ import annotations

from owr_shared.errors import Conflict, Forbidden, ProblemError, Unauthorized


class InvalidEmail(ProblemError):
    status, slug, title = 422, "validation-error", "Validation Error"

    def __init__(self) -> None:
        message = "The email address is not valid."
        super().__init__(message, errors=[{"loc": ["body", "email"], "msg": message, "type": "email_invalid"}])


class EmailTaken(Conflict):
    """Registering an existing address; revealing that is accepted for registration."""

    slug, title = "email-taken", "Email Already Registered"

    def __init__(self) -> None:
        super().__init__("An account with this email address already exists.")


class WrongCurrentPassword(Forbidden):
    slug, title = "wrong-current-password", "Wrong Current Password"

    def __init__(self) -> None:
        super().__init__("The current password is incorrect.")


class AccountGone(Unauthorized):
    """A valid token whose user was deleted, or which predates the user's last password change."""

    slug, title = "invalid-token", "Invalid Token"

    def __init__(self) -> None:
        super().__init__("The token no longer grants access to an account.")
