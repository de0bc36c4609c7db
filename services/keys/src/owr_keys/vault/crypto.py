"""Envelope encryption of OpenRouter keys, on `owr_shared.envelope`.

A key's ciphertext is bound to its workspace and key id (`owr:key:v1:{workspace}:{key}`), its wrapped DEK to
both and the KEK version (`owr:dek:v1:{workspace}:{key}:{version}`): the bytes every stored row was sealed
with, so existing rows keep opening. `Fingerprinter` keys duplicate detection.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from owr_keys.settings import KeysSettings
from owr_keys.vault.errors import KeyUnreadable
from owr_shared.envelope import AadContext, Envelope, SealedSecret
from owr_shared.logging import get_logger

__all__ = ["KEY_CONTEXT", "Fingerprinter", "SealedSecret", "Vault"]

log = get_logger(__name__)

KEY_CONTEXT = AadContext(secret=b"owr:key:v1:", dek=b"owr:dek:v1:")
_FINGERPRINT_CONTEXT = b"owr:fingerprint:v1:"


def _binding(workspace_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, object]:
    return {"workspace_id": workspace_id, "key_id": key_id}


class Vault:
    """Seals, opens and re-wraps OpenRouter keys with the configured KEKs."""

    def __init__(self, keks: dict[str, bytes], active_version: str) -> None:
        self._envelope = Envelope(
            keks, active_version, context=KEY_CONTEXT, unreadable=KeyUnreadable, event="key_unreadable"
        )

    def __repr__(self) -> str:
        return f"Vault(versions={sorted(self.versions)!r}, active={self.active_version!r})"

    @property
    def active_version(self) -> str:
        return self._envelope.active_version

    @property
    def versions(self) -> frozenset[str]:
        return self._envelope.versions

    @classmethod
    def from_settings(cls, settings: KeysSettings) -> Vault:
        """The configured KEKs; outside production an unset `KEYS_KEKS` becomes an ephemeral one."""
        return cls(
            *settings.keks_or_ephemeral(
                "sealing with a KEK generated at start; stored keys will not be readable after a restart."
            )
        )

    def seal(self, plaintext: str, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> SealedSecret:
        """Encrypt `plaintext` under a fresh DEK wrapped by the active KEK."""
        return self._envelope.seal(plaintext, _binding(workspace_id, key_id))

    def open(self, sealed: SealedSecret, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> str:
        """The plaintext, or `KeyUnreadable` (tampered row, moved ciphertext, unknown or wrong KEK)."""
        return self._envelope.open(sealed, _binding(workspace_id, key_id))

    def rewrap(self, sealed: SealedSecret, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> SealedSecret:
        """The same ciphertext with its DEK wrapped by the active KEK (unchanged when it already is)."""
        return self._envelope.rewrap(sealed, _binding(workspace_id, key_id))


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
