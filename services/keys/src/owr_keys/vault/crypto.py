"""Envelope encryption of OpenRouter keys.

Each secret gets a fresh 256-bit data key (DEK) and is sealed with AES-256-GCM under a random
96-bit nonce; the associated data binds the ciphertext to its workspace and key id, so a
ciphertext copied into another row does not open. The DEK is wrapped with AES-256-GCM by a
versioned key-encryption key (KEK), with associated data naming the workspace, the key id and
the KEK version. Re-wrapping under a new KEK touches the wrapped DEK only, never the ciphertext.

Nothing here decrypts implicitly: `Vault.open` is the one call that yields plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from owr_keys.settings import KEK_BYTES, KeysSettings
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.logging import get_logger

log = get_logger(__name__)

NONCE_BYTES = 12
DEK_BYTES = 32
_SECRET_AAD = b"owr:key:v1:"
_DEK_AAD = b"owr:dek:v1:"
_FINGERPRINT_CONTEXT = b"owr:fingerprint:v1:"


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """What a row stores for one secret; its repr never shows the bytes."""

    ciphertext: bytes
    nonce: bytes
    wrapped_dek: bytes
    dek_nonce: bytes
    kek_version: str

    def __repr__(self) -> str:
        return (
            f"SealedSecret(ciphertext=***, nonce=***, wrapped_dek=***, dek_nonce=***, kek_version={self.kek_version!r})"
        )


def secret_aad(workspace_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    return _SECRET_AAD + str(workspace_id).encode() + b":" + str(key_id).encode()


def dek_aad(workspace_id: uuid.UUID, key_id: uuid.UUID, kek_version: str) -> bytes:
    return _DEK_AAD + str(workspace_id).encode() + b":" + str(key_id).encode() + b":" + kek_version.encode()


class Vault:
    """Seals, opens and re-wraps secrets with the configured KEKs."""

    def __init__(self, keks: dict[str, bytes], active_version: str) -> None:
        if active_version not in keks:
            raise ValueError("the active KEK version is not configured")
        if any(len(kek) != KEK_BYTES for kek in keks.values()):
            raise ValueError(f"every KEK must be {KEK_BYTES} bytes")
        self._keks = {version: AESGCM(kek) for version, kek in keks.items()}
        self.active_version = active_version

    def __repr__(self) -> str:
        return f"Vault(versions={sorted(self._keks)!r}, active={self.active_version!r})"

    @property
    def versions(self) -> frozenset[str]:
        return frozenset(self._keks)

    @classmethod
    def from_settings(cls, settings: KeysSettings) -> Vault:
        """The configured KEKs; outside production an unset `KEYS_KEKS` becomes an ephemeral one."""
        keks = settings.kek_map()
        if not keks:
            settings.warn_generated_secret(
                "KEYS_KEKS",
                "kek_ephemeral",
                "sealing with a KEK generated at start; stored keys will not be readable after a restart.",
            )
            return cls({"ephemeral": AESGCM.generate_key(bit_length=256)}, "ephemeral")
        assert settings.active_kek_version is not None  # checked by the settings validator
        return cls(keks, settings.active_kek_version)

    def seal(self, plaintext: str, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> SealedSecret:
        """Encrypt `plaintext` under a fresh DEK wrapped by the active KEK."""
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(dek).encrypt(nonce, plaintext.encode("utf-8"), secret_aad(workspace_id, key_id))
        wrapped_dek, dek_nonce = self._wrap(dek, workspace_id, key_id, self.active_version)
        return SealedSecret(ciphertext, nonce, wrapped_dek, dek_nonce, self.active_version)

    def open(self, sealed: SealedSecret, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> str:
        """The plaintext, or `KeyUnreadable` (tampered row, moved ciphertext, unknown or wrong KEK)."""
        dek = self._unwrap(sealed, workspace_id, key_id)
        try:
            plaintext = AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, secret_aad(workspace_id, key_id))
        except (InvalidTag, ValueError):
            raise self._unreadable("ciphertext_rejected", sealed, workspace_id, key_id) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise self._unreadable("plaintext_not_text", sealed, workspace_id, key_id) from None

    def rewrap(self, sealed: SealedSecret, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> SealedSecret:
        """The same ciphertext with its DEK wrapped by the active KEK (unchanged when it already is)."""
        if sealed.kek_version == self.active_version:
            return sealed
        dek = self._unwrap(sealed, workspace_id, key_id)
        wrapped_dek, dek_nonce = self._wrap(dek, workspace_id, key_id, self.active_version)
        return SealedSecret(sealed.ciphertext, sealed.nonce, wrapped_dek, dek_nonce, self.active_version)

    def _wrap(self, dek: bytes, workspace_id: uuid.UUID, key_id: uuid.UUID, version: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._keks[version].encrypt(nonce, dek, dek_aad(workspace_id, key_id, version)), nonce

    def _unwrap(self, sealed: SealedSecret, workspace_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
        kek = self._keks.get(sealed.kek_version)
        if kek is None:
            raise self._unreadable("kek_not_configured", sealed, workspace_id, key_id)
        try:
            dek = kek.decrypt(sealed.dek_nonce, sealed.wrapped_dek, dek_aad(workspace_id, key_id, sealed.kek_version))
        except (InvalidTag, ValueError):
            raise self._unreadable("dek_rejected", sealed, workspace_id, key_id) from None
        if len(dek) != DEK_BYTES:
            raise self._unreadable("dek_malformed", sealed, workspace_id, key_id)
        return dek

    @staticmethod
    def _unreadable(reason: str, sealed: SealedSecret, workspace_id: uuid.UUID, key_id: uuid.UUID) -> KeyUnreadable:
        # Identifiers and the reason only: no key material, no ciphertext, no traceback with data.
        log.error(
            "key_unreadable",
            reason=reason,
            key_id=str(key_id),
            workspace_id=str(workspace_id),
            kek_version=sealed.kek_version,
        )
        return KeyUnreadable()


class Fingerprinter:
    """Keyed HMAC-SHA-256 of a secret within a workspace: detects duplicates, keeps no plaintext.

    The workspace is part of the message, so equal keys in two workspaces do not share a
    fingerprint and the table does not reveal that they are the same.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(key=***)"

    @classmethod
    def from_settings(cls, settings: KeysSettings) -> Fingerprinter:
        key = settings.fingerprint_key_bytes()
        if key is None:
            if settings.is_production:
                raise RuntimeError("KEYS_FINGERPRINT_KEY is required in production")
            log.warning(
                "fingerprint_key_ephemeral",
                detail="KEYS_FINGERPRINT_KEY is unset: duplicates stored before a restart will not be detected.",
            )
            return cls(os.urandom(32))
        return cls(key)

    def __call__(self, plaintext: str, *, workspace_id: uuid.UUID) -> bytes:
        message = _FINGERPRINT_CONTEXT + str(workspace_id).encode() + b":" + plaintext.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()
