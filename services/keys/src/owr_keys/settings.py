"""Keys service settings: `KEYS_*` variables on top of the shared infrastructure ones.

`KEYS_KEKS` is a JSON object mapping a KEK version to the base64 of 32 random bytes;
`KEYS_ACTIVE_KEK_VERSION` names the one new secrets are wrapped under (`owr_shared.envelope.KekServiceSettings`).
Older versions stay listed until `python -m owr_keys.rotate_kek` has re-wrapped every row, then they can be
removed.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from owr_shared.envelope import KekServiceSettings, decode_key_material, usable_secret
from owr_shared.settings import NonEmptyText, Port, is_placeholder, secret_field

FINGERPRINT_KEY_MIN_BYTES = 32


class KeysSettings(KekServiceSettings):
    """Configuration of the keys service (`KEYS_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="KEYS_", env_file=None, extra="ignore", frozen=True)

    port: Port = 8002
    admin_port: Port = 9002
    internal_audience: NonEmptyText = "owr-keys"

    fingerprint_key: SecretStr | None = secret_field(
        "base64 of at least 32 bytes; the HMAC key of duplicate-detection fingerprints."
    )

    sync_interval_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    # Keys one workspace may store (inactive ones count): one tenant cannot flood the sync schedule.
    max_keys_per_workspace: int = Field(default=1000, ge=1, le=1_000_000)
    # The ARQ queue the worker reads; both sides must agree.
    queue_name: str = Field(default="arq:queue", min_length=1)

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

    def fingerprint_key_bytes(self) -> bytes | None:
        raw = usable_secret(self.fingerprint_key)
        return decode_key_material(raw) if raw is not None else None
