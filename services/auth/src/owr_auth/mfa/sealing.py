"""The MFA key: TOTP secrets sealed at rest, recovery codes stored as keyed hashes.

Two subkeys are derived from `AUTH_MFA_KEY` with HKDF-SHA-256 (distinct `info`), so the one configured
secret never serves two algorithms. A TOTP secret is sealed with AES-256-GCM under a random 96-bit nonce;
the associated data names the purpose and the user, so a sealed secret copied onto another user's row
does not open. The stored value is `version (1 byte) || nonce || ciphertext`: the version byte leaves room
to move to the shared envelope scheme (versioned KEKs) without a flag day.

Recovery codes are 60 random bits each, so a keyed hash is enough: HMAC-SHA-256 under the recovery
subkey, over the user id and the normalised code. A copy of the database alone opens nothing and lets no
one test guesses offline; an online guess goes through the code throttle.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from owr_auth.mfa.errors import MfaUnreadable
from owr_shared.logging import get_logger

log = get_logger(__name__)

_VERSION = b"\x01"
_NONCE_BYTES = 12
_SEAL_INFO = b"owr-auth mfa: totp secret sealing v1"
_RECOVERY_INFO = b"owr-auth mfa: recovery code hmac v1"
_AAD_PREFIX = b"owr-auth:totp-secret:"


def _subkey(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class MfaKeys:
    """Seal and open TOTP secrets; hash recovery codes. Its repr shows no key material."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(_subkey(key, _SEAL_INFO))
        self._recovery_key = _subkey(key, _RECOVERY_INFO)

    def __repr__(self) -> str:
        return "MfaKeys(***)"

    def seal(self, user_id: uuid.UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode("ascii"), _AAD_PREFIX + user_id.bytes)

    def open(self, user_id: uuid.UUID, sealed: bytes) -> str:
        """The secret; `MfaUnreadable` when the row was tampered with, moved, or sealed under another key."""
        sealed = bytes(sealed)
        if sealed[:1] != _VERSION or len(sealed) <= 1 + _NONCE_BYTES:
            raise self._unreadable(user_id, "unknown_format")
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, _AAD_PREFIX + user_id.bytes).decode("ascii")
        except (InvalidTag, UnicodeDecodeError):
            raise self._unreadable(user_id, "rejected") from None

    def recovery_hash(self, user_id: uuid.UUID, normalized_code: str) -> bytes:
        message = user_id.bytes + b":" + normalized_code.encode("ascii")
        return hmac.new(self._recovery_key, message, hashlib.sha256).digest()

    @staticmethod
    def _unreadable(user_id: uuid.UUID, reason: str) -> MfaUnreadable:
        # The user and the reason only; a key change without migrating the rows shows up here.
        log.error("totp_secret_unreadable", user_id=str(user_id), reason=reason)
        return MfaUnreadable()
