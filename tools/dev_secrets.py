"""Development-only secrets for `make run` and the tests (tools/devstack.py); production supplies its own."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path


def _persistent_secret(path: Path, make: Callable[[], bytes]) -> str:
    """A development-only secret kept in `path` (mode 600), so restarts of `make run` keep sessions and keys readable."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(make())
    return path.read_text()


def _ed25519_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _random_base64() -> bytes:
    return base64.b64encode(secrets.token_bytes(32))


def dev_secrets(directory: Path) -> dict[str, str]:
    """Signing key, KEKs, fingerprint key and API-token pepper for development and tests; production supplies its own."""
    kek = _persistent_secret(directory / "kek-v1.b64", _random_base64)
    usage_kek = _persistent_secret(directory / "usage-kek-v1.b64", _random_base64)
    pepper = _persistent_secret(directory / "api-token-pepper.b64", _random_base64)
    return {
        "AUTH_JWT_PRIVATE_KEY": _persistent_secret(directory / "jwt-ed25519.pem", _ed25519_pem),
        "KEYS_KEKS": json.dumps({"v1": kek}),
        "KEYS_ACTIVE_KEK_VERSION": "v1",
        "KEYS_FINGERPRINT_KEY": _persistent_secret(directory / "fingerprint.b64", _random_base64),
        # usage seals alert channels' URLs and signing secrets under a KEK of its own.
        "USAGE_KEKS": json.dumps({"v1": usage_kek}),
        "USAGE_ACTIVE_KEK_VERSION": "v1",
        # auth stores API tokens as HMACs under it; the gateway names its cache entries with the same value.
        "AUTH_API_TOKEN_PEPPER": pepper,
        # Two-factor sign-in: kept, so `make run` restarts keep enrolments and recovery codes working.
        "AUTH_KEKS": json.dumps({"v1": _persistent_secret(directory / "auth-kek-v1.b64", _random_base64)}),
        "AUTH_ACTIVE_KEK_VERSION": "v1",
        "AUTH_RECOVERY_CODE_PEPPER": _persistent_secret(directory / "recovery-code-pepper.b64", _random_base64),
        "GATEWAY_API_TOKEN_PEPPER": pepper,
    }
