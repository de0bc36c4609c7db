"""Keys service settings: `KEYS_*` variables on top of the shared infrastructure ones.

`KEYS_KEKS` is a JSON object mapping a KEK version to the base64 of 32 random bytes;
`KEYS_ACTIVE_KEK_VERSION` names the one new secrets are wrapped under. Older versions stay listed
until `python -m owr_keys.rotate_kek` has re-wrapped every row, then they can be removed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from owr_shared.settings import JwksServiceSettings, NonEmptyText, Port, is_placeholder, secret_field

KEK_BYTES = 32
FINGERPRINT_KEY_MIN_BYTES = 32
KEK_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


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


class KeysSettings(JwksServiceSettings):
    """Configuration of the keys service (`KEYS_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="KEYS_", env_file=None, extra="ignore", frozen=True)

    port: Port = 8002
    admin_port: Port = 9002
    internal_audience: NonEmptyText = "owr-keys"

    keks: SecretStr | None = secret_field(
        "JSON object of KEK version -> base64 of 32 bytes; ephemeral outside production when unset."
    )
    active_kek_version: str | None = None
    fingerprint_key: SecretStr | None = secret_field(
        "base64 of at least 32 bytes; the HMAC key of duplicate-detection fingerprints."
    )

    sync_interval_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    # Keys one workspace may store (inactive ones count): one tenant cannot flood the sync schedule.
    max_keys_per_workspace: int = Field(default=1000, ge=1, le=1_000_000)
    # The ARQ queue the worker reads; both sides must agree.
    queue_name: str = Field(default="arq:queue", min_length=1)

    @field_validator("keks")
    @classmethod
    def _check_keks(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # A template value (`.env.example`) is left for the production check to refuse by name.
        if not is_placeholder(value.get_secret_value()):
            parse_keks(value.get_secret_value())
        return value

    @field_validator("fingerprint_key")
    @classmethod
    def _check_fingerprint_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if is_placeholder(value.get_secret_value()):
            return value
        if len(decode_key_material(value.get_secret_value())) < FINGERPRINT_KEY_MIN_BYTES:
            raise ValueError(f"must be the base64 of at least {FINGERPRINT_KEY_MIN_BYTES} bytes")
        return value

    @model_validator(mode="after")
    def _check_active_version(self) -> Self:
        if _usable(self.keks) is None:
            return self
        if self.active_kek_version is None:
            raise ValueError("KEYS_ACTIVE_KEK_VERSION is required when KEYS_KEKS is set")
        if self.active_kek_version not in self.kek_map():
            raise ValueError("KEYS_ACTIVE_KEK_VERSION names a version that KEYS_KEKS does not contain")
        return self

    def kek_map(self) -> dict[str, bytes]:
        """The configured KEKs by version (empty when unset or a placeholder outside production)."""
        raw = _usable(self.keks)
        return parse_keks(raw) if raw is not None else {}

    def fingerprint_key_bytes(self) -> bytes | None:
        raw = _usable(self.fingerprint_key)
        return decode_key_material(raw) if raw is not None else None


def _usable(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset or a placeholder (production refuses those at start)."""
    if secret is None or is_placeholder(secret.get_secret_value()):
        return None
    return secret.get_secret_value()
