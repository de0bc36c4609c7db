"""Login, refresh and throttling errors; the messages never say which half of a credential was wrong."""

from __future__ import annotations

from owr_shared.errors import RETRY_SOON, Forbidden, NotFound, ServiceUnavailable, TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    """Unknown email and wrong password answer with this one body."""

    slug, title = "invalid-credentials", "Invalid Credentials"
    default_detail = "The email or password is incorrect."


class LoginLocked(TooManyRequests):
    slug, title = "login-locked", "Too Many Failed Logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed attempts; try again later.", retry_after=retry_after)


class LoginUnavailable(ServiceUnavailable):
    """The throttle's store is unreachable: logins are refused rather than left unthrottled."""

    slug, title = "login-unavailable", "Login Unavailable"
    default_detail = "Login is temporarily unavailable; try again shortly."
    default_headers = RETRY_SOON


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Invalid Refresh Token"
    default_detail = "The refresh token is invalid, expired or revoked."


class RefreshTokenReused(InvalidRefreshToken):
    """A rotated token came back: its family is revoked. Same answer as any invalid token."""


class NoWorkspace(Forbidden):
    slug, title = "no-workspace", "No Workspace"
    default_detail = "The account is not a member of any workspace."


class RevocationUnavailable(ServiceUnavailable):
    """Sessions cannot be cut off right now (Redis down), so the change that needs it is refused."""

    slug, title = "revocation-unavailable", "Temporarily Unavailable"
    default_detail = "The change cannot be completed right now; try again shortly."
    default_headers = RETRY_SOON


class SessionNotFound(NotFound):
    """Not one of the caller's live sessions (another person's answers the same)."""

    slug, title = "session-not-found", "Session Not Found"
    default_detail = "No such session: it has ended already, or it is not yours."
