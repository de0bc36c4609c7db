"""The signing keyring: one active Ed25519 private key, plus retired public keys still in the JWKS.

Rotation: generate a new key, set it as `AUTH_JWT_PRIVATE_KEY`, and move the old key's public PEM
into `AUTH_JWT_RETIRED_PUBLIC_KEYS` for at least the access-token lifetime plus leeway; verifiers
reload the JWKS when they meet the new `kid`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger

log = get_logger(__name__)

ALGORITHM = "EdDSA"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The key as a JWK (RFC 8037), with `kid` set to its RFC 7638 thumbprint."""
    x = _b64url(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint(x), "alg": ALGORITHM, "use": "sig"}


def thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 OKP key: SHA-256 over its required members in order."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def private_key_pem(private_key: Ed25519PrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
        "ascii"
    )


@dataclass(frozen=True, slots=True)
class Keyring:
    """The active signing key and every public key a verifier should still accept."""

    private_key: Ed25519PrivateKey
    active_kid: str
    public_jwks: tuple[dict[str, str], ...]

    @classmethod
    def build(cls, private_key: Ed25519PrivateKey, retired: list[Ed25519PublicKey] | None = None) -> Keyring:
        active = public_jwk(private_key.public_key())
        jwks = [active]
        for public_key in retired or []:
            jwk = public_jwk(public_key)
            if all(existing["kid"] != jwk["kid"] for existing in jwks):
                jwks.append(jwk)
        return cls(private_key=private_key, active_kid=active["kid"], public_jwks=tuple(jwks))

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Keyring:
        """Load the configured keys; outside production an unset key becomes an ephemeral one."""
        retired = []
        for pem in settings.jwt_retired_public_keys:
            key = serialization.load_pem_public_key(pem.encode())
            assert isinstance(key, Ed25519PublicKey)  # checked by the settings validator
            retired.append(key)
        if settings.jwt_private_key is None:
            settings.warn_generated_secret(
                "AUTH_JWT_PRIVATE_KEY",
                "jwt_ephemeral_signing_key",
                "signing with a key generated at start; tokens will not survive a restart.",
            )
            return cls.build(Ed25519PrivateKey.generate(), retired)
        private = serialization.load_pem_private_key(
            settings.jwt_private_key.get_secret_value().encode(), password=None
        )
        assert isinstance(private, Ed25519PrivateKey)  # checked by the settings validator
        return cls.build(private, retired)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document: active key first, then retired ones."""
        return {"keys": [dict(jwk) for jwk in self.public_jwks]}
