"""Two-factor errors. None of them says whether a code was close, or which half of a sign-in was wrong."""

from __future__ import annotations

from owr_shared.errors import INTERNAL_ERROR, Conflict, Forbidden, ProblemError, Unauthorized


class InvalidChallenge(Unauthorized):
    """The sign-in's first step is unknown, used, expired, or was made by another client: start again."""

    slug, title = "invalid-mfa-challenge", "Sign-in Expired"
    default_detail = "This sign-in attempt has expired or is not valid; sign in again with your password."


class InvalidSecondFactor(Unauthorized):
    """A wrong, malformed, already used or too old code at the second step (the challenge stays usable)."""

    slug, title = "invalid-second-factor", "Invalid Code"
    default_detail = "The code is not valid. Enter the current code from your authenticator app, or a recovery code."


class WrongCode(Forbidden):
    """A signed-in person's code did not verify (enable, disable): a 403, not a 401, the session is fine."""

    slug, title = "wrong-code", "Wrong Code"
    default_detail = "The code is not valid. Enter the current code from your authenticator app."


class MfaAlreadyEnabled(Conflict):
    slug, title = "mfa-already-enabled", "Two-Factor Sign-in Already On"
    default_detail = "Two-factor sign-in is already on; turn it off first to set up another authenticator."


class MfaNotEnabled(Conflict):
    slug, title = "mfa-not-enabled", "Two-Factor Sign-in Is Off"
    default_detail = "Two-factor sign-in is not on for this account."


class MfaSetupMissing(Conflict):
    slug, title = "mfa-setup-missing", "No Pending Setup"
    default_detail = "Start the setup first (POST /api/v1/auth/2fa/setup), then confirm it with a code."


class MfaUnreadable(ProblemError):
    """The stored secret does not open with the configured `AUTH_KEKS` (its version is gone, or the row was altered)."""

    status, slug, title = INTERNAL_ERROR
    default_detail = "Two-factor verification is unavailable for this account; contact the operator."
