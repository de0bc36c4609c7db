"""TOTP secrets sealed at rest with the envelope scheme (`owr_shared.envelope`, under `AUTH_KEKS`), and
recovery codes stored as keyed hashes (under `AUTH_RECOVERY_CODE_PEPPER`).

A secret's ciphertext and wrapped data key are bound to the user (`owr:totp:v1:{user_id}`): a sealed secret
copied onto another user's row does not open. A KEK rotation re-wraps the data key only; `check` re-wraps a
credential under the active KEK whenever it verifies a code with it.

Recovery codes carry 60 random bits each, so a keyed hash is enough: HMAC-SHA-256 over the user id and the
normalised code. A copy of the database alone opens nothing and lets no one test guesses offline; an
online guess goes through the code throttle.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from owr_auth.mfa.errors import MfaUnreadable
from owr_auth.settings import AuthSettings
from owr_shared.envelope import AadContext, Binding, Envelope, SealedSecret

TOTP_CONTEXT = AadContext(secret=b"owr:totp:v1:", dek=b"owr:totp-dek:v1:")
_RECOVERY_CONTEXT = b"owr:recovery-code:v1:"


def _binding(user_id: uuid.UUID) -> Binding:
    return {"user_id": user_id}


class MfaKeys:
    """Seal, open and re-wrap TOTP secrets; hash recovery codes. Its repr shows no key material."""

    def __init__(self, keks: dict[str, bytes], active_version: str, *, recovery_pepper: bytes) -> None:
        self._envelope = Envelope(
            keks, active_version, context=TOTP_CONTEXT, unreadable=MfaUnreadable, event="totp_secret_unreadable"
        )
        self._recovery_pepper = recovery_pepper

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> MfaKeys:
        """`AUTH_KEKS` (outside production an unset one is ephemeral) and the recovery codes' pepper."""
        keks, active = settings.keks_or_ephemeral(
            "sealing TOTP secrets with a KEK generated at start; two-factor enrolments will not survive a restart."
        )
        return cls(keks, active, recovery_pepper=settings.recovery_code_pepper_bytes)

    def __repr__(self) -> str:
        return f"MfaKeys(versions={sorted(self._envelope.versions)!r}, active={self.active_version!r})"

    @property
    def active_version(self) -> str:
        return self._envelope.active_version

    def seal(self, user_id: uuid.UUID, secret: str) -> SealedSecret:
        return self._envelope.seal(secret, _binding(user_id))

    def open(self, user_id: uuid.UUID, sealed: SealedSecret) -> str:
        """The secret; `MfaUnreadable` when the row was tampered with, moved, or its KEK is not configured."""
        return self._envelope.open(sealed, _binding(user_id))

    def rewrap(self, user_id: uuid.UUID, sealed: SealedSecret) -> SealedSecret:
        return self._envelope.rewrap(sealed, _binding(user_id))

    def recovery_hash(self, user_id: uuid.UUID, normalized_code: str) -> bytes:
        message = _RECOVERY_CONTEXT + user_id.bytes + b":" + normalized_code.encode("ascii")
        return hmac.new(self._recovery_pepper, message, hashlib.sha256).digest()
