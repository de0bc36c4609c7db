"""Envelope encryption of stored secrets (keys' OpenRouter keys, usage's channel targets and secrets).

Each secret gets a fresh 256-bit data key (DEK) and is sealed with AES-256-GCM under a random 96-bit
nonce; the associated data binds the ciphertext to its row (an `AadContext` prefix and the row's
identity, e.g. workspace and key id), so a ciphertext copied into another row does not open. The DEK is
wrapped with AES-256-GCM by a versioned key-encryption key (KEK), with associated data naming the same
identity and the KEK version. Re-wrapping under a new KEK touches the wrapped DEK only, never the ciphertext.

Nothing here decrypts implicitly: `Envelope.open` is the one call that yields plaintext. The KEKs are
configured as `<PREFIX>KEKS` (JSON `{"version": "<base64 of 32 bytes>"}`) and `<PREFIX>ACTIVE_KEK_VERSION`
(`KekServiceSettings`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr, field_validator, model_validator

from owr_shared.logging import get_logger
from owr_shared.settings import BaseServiceSettings, JwksServiceSettings, is_placeholder, secret_field

log = get_logger(__name__)

KEK_BYTES = 32
DEK_BYTES = 32
NONCE_BYTES = 12
KEK_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
EPHEMERAL_VERSION = "ephemeral"

# A row's identity, in a fixed order: {"workspace_id": ..., "key_id": ...}. Its values go into the associated
# data (as text), its names into the log line of a value that would not open.
Binding = Mapping[str, object]


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


@dataclass(frozen=True, slots=True)
class AadContext:
    """The associated-data prefixes of one kind of sealed value: `secret` for the ciphertext, `dek` for the
    wrapped DEK. Two kinds with other prefixes never open each other's rows."""

    secret: bytes
    dek: bytes

    def secret_aad(self, binding: Binding) -> bytes:
        return self.secret + _joined(binding)

    def dek_aad(self, binding: Binding, kek_version: str) -> bytes:
        return self.dek + _joined(binding) + b":" + kek_version.encode()


def _joined(binding: Binding) -> bytes:
    return b":".join(str(value).encode() for value in binding.values())


class Envelope:
    """Seals, opens and re-wraps one kind of secret with the configured KEKs.

    `unreadable` builds the error a value that does not open raises (fixed text, never a cause with data);
    `event` is the name of the error log line, which carries the binding's ids and the reason only.
    """

    def __init__(
        self,
        keks: Mapping[str, bytes],
        active_version: str,
        *,
        context: AadContext,
        unreadable: Callable[[], Exception],
        event: str,
    ) -> None:
        if active_version not in keks:
            raise ValueError("the active KEK version is not configured")
        if any(len(kek) != KEK_BYTES for kek in keks.values()):
            raise ValueError(f"every KEK must be {KEK_BYTES} bytes")
        self._keks = {version: AESGCM(kek) for version, kek in keks.items()}
        self.active_version = active_version
        self._context = context
        self._unreadable_error = unreadable
        self._event = event

    def __repr__(self) -> str:
        return f"Envelope(versions={sorted(self._keks)!r}, active={self.active_version!r})"

    @property
    def versions(self) -> frozenset[str]:
        return frozenset(self._keks)

    def seal(self, plaintext: str, binding: Binding) -> SealedSecret:
        """Encrypt `plaintext` under a fresh DEK wrapped by the active KEK."""
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(dek).encrypt(nonce, plaintext.encode("utf-8"), self._context.secret_aad(binding))
        wrapped_dek, dek_nonce = self._wrap(dek, binding, self.active_version)
        return SealedSecret(ciphertext, nonce, wrapped_dek, dek_nonce, self.active_version)

    def open(self, sealed: SealedSecret, binding: Binding) -> str:
        """The plaintext, or the `unreadable` error (tampered row, moved ciphertext, unknown or wrong KEK)."""
        dek = self._unwrap(sealed, binding)
        try:
            plaintext = AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, self._context.secret_aad(binding))
        except (InvalidTag, ValueError):
            raise self._unreadable("ciphertext_rejected", sealed, binding) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise self._unreadable("plaintext_not_text", sealed, binding) from None

    def rewrap(self, sealed: SealedSecret, binding: Binding) -> SealedSecret:
        """The same ciphertext with its DEK wrapped by the active KEK (unchanged when it already is)."""
        if sealed.kek_version == self.active_version:
            return sealed
        dek = self._unwrap(sealed, binding)
        wrapped_dek, dek_nonce = self._wrap(dek, binding, self.active_version)
        return SealedSecret(sealed.ciphertext, sealed.nonce, wrapped_dek, dek_nonce, self.active_version)

    def _wrap(self, dek: bytes, binding: Binding, version: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._keks[version].encrypt(nonce, dek, self._context.dek_aad(binding, version)), nonce

    def _unwrap(self, sealed: SealedSecret, binding: Binding) -> bytes:
        kek = self._keks.get(sealed.kek_version)
        if kek is None:
            raise self._unreadable("kek_not_configured", sealed, binding)
        try:
            dek = kek.decrypt(sealed.dek_nonce, sealed.wrapped_dek, self._context.dek_aad(binding, sealed.kek_version))
        except (InvalidTag, ValueError):
            raise self._unreadable("dek_rejected", sealed, binding) from None
        if len(dek) != DEK_BYTES:
            raise self._unreadable("dek_malformed", sealed, binding)
        return dek

    def _unreadable(self, reason: str, sealed: SealedSecret, binding: Binding) -> Exception:
        # Identifiers and the reason only: no key material, no ciphertext, no traceback with data.
        ids = {name: str(value) for name, value in binding.items()}
        log.error(self._event, reason=reason, kek_version=sealed.kek_version, **ids)
        return self._unreadable_error()


# --- configuration -----------------------------------------------------------------------------------


def decode_key_material(value: str) -> bytes:
    """Standard or URL-safe base64, padding optional; ValueError without echoing the value."""
    text = value.strip()
    text += "=" * (-len(text) % 4)
    try:
        altchars = b"-_" if "-" in text or "_" in text else None
        return base64.b64decode(text.encode("ascii"), altchars=altchars, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("is not valid base64") from None


def parse_keks(raw: str) -> dict[str, bytes]:
    """`{"version": "<base64 of 32 bytes>", ...}` → {version: key}; messages never carry key material."""
    try:
        document = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object of version -> base64 key") from None
    if not isinstance(document, dict) or not document:
        raise ValueError("must be a non-empty JSON object of version -> base64 key")
    keks: dict[str, bytes] = {}
    for version, encoded in document.items():
        if not KEK_VERSION_PATTERN.match(version):
            raise ValueError("KEK versions must be 1-32 characters of letters, digits, '.', '_' or '-'")
        if not isinstance(encoded, str):
            raise ValueError(f"KEK {version!r} must be a base64 string")
        try:
            key = decode_key_material(encoded)
        except ValueError:
            raise ValueError(f"KEK {version!r} is not valid base64") from None
        if len(key) != KEK_BYTES:
            raise ValueError(f"KEK {version!r} must be exactly {KEK_BYTES} bytes")
        keks[version] = key
    return keks


def usable_secret(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset or a placeholder (production refuses those at start)."""
    if secret is None or is_placeholder(secret.get_secret_value()):
        return None
    return secret.get_secret_value()


class KekSettings(BaseServiceSettings):
    """Settings that seal secrets: `<PREFIX>KEKS` and `<PREFIX>ACTIVE_KEK_VERSION` (its `env_prefix`).

    Required in production; elsewhere unset means one ephemeral KEK, with a warning (`keks_or_ephemeral`).
    A service that verifies auth's tokens takes `KekServiceSettings`; auth, which issues them, mixes this in.
    """

    keks: SecretStr | None = secret_field(
        "JSON object of KEK version -> base64 of 32 bytes; ephemeral outside production when unset."
    )
    active_kek_version: str | None = None

    @field_validator("keks")
    @classmethod
    def _check_keks(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # A template value (`.env.example`) is left for the production check to refuse by name.
        if not is_placeholder(value.get_secret_value()):
            parse_keks(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_active_version(self) -> Self:
        if usable_secret(self.keks) is None:
            return self
        prefix = self.variable_prefix
        if self.active_kek_version is None:
            raise ValueError(f"{prefix}ACTIVE_KEK_VERSION is required when {prefix}KEKS is set")
        if self.active_kek_version not in self.kek_map():
            raise ValueError(f"{prefix}ACTIVE_KEK_VERSION names a version that {prefix}KEKS does not contain")
        return self

    @property
    def variable_prefix(self) -> str:
        return str(self.model_config.get("env_prefix", "")).upper()

    def kek_map(self) -> dict[str, bytes]:
        """The configured KEKs by version (empty when unset or a placeholder outside production)."""
        raw = usable_secret(self.keks)
        return parse_keks(raw) if raw is not None else {}

    def keks_or_ephemeral(self, consequence: str) -> tuple[dict[str, bytes], str]:
        """The KEKs and the active version; outside production an unset `<PREFIX>KEKS` becomes one KEK generated
        now (`consequence` says what that costs in the warning), in production it is an error."""
        keks = self.kek_map()
        if not keks:
            self.warn_generated_secret(f"{self.variable_prefix}KEKS", "kek_ephemeral", consequence)
            return {EPHEMERAL_VERSION: AESGCM.generate_key(bit_length=256)}, EPHEMERAL_VERSION
        assert self.active_kek_version is not None  # checked by the validator
        return keks, self.active_kek_version


class KekServiceSettings(KekSettings, JwksServiceSettings):
    """A service that seals secrets and verifies auth's tokens (keys, usage)."""
