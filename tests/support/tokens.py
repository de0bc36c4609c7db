"""Tokens as auth mints them, for service tests: a test Ed25519 keyring and its JWKS.

Claims follow docs/architecture.md exactly. An app under test gets `keyring.fetch` as its JWKS
fetcher, so every token signed here verifies there (and nowhere else).
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm


def access_claims(user_id: str, workspace_id: str | None, role: str = "owner", **overrides: Any) -> dict[str, Any]:
    """An access token's claims as auth mints them; without `wid` when `workspace_id` is None. The person's
    address is verified unless `email_verified=False` is passed."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "wid": workspace_id,
        "role": role,
        "email_verified": True,
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iss": "owr-auth",
        "aud": "owr-api",
        "iat": now,
        "exp": now + 600,
    }
    if workspace_id is None:
        del claims["wid"]
    claims.update(overrides)
    return claims


class TestKeyring:
    """Signs access and service tokens the way auth does (EdDSA, `kid`), and serves the matching JWKS.

    `service_audience` and `default_scopes` are the called service's: `owr-keys` and the keys scopes for
    the keys tests, `owr-usage` and the usage scopes for the usage tests.
    """

    __test__ = False

    def __init__(self, *, service_audience: str, default_scopes: tuple[str, ...]) -> None:
        self.service_audience = service_audience
        self.default_scopes = default_scopes
        self.private_key = Ed25519PrivateKey.generate()
        self.kid = "test-" + secrets.token_hex(4)
        jwk = OKPAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.jwk)]}

    async def fetch(self) -> dict[str, Any]:
        return self.jwks

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "at+jwt", **header}
        )

    def access_token(self, user_id: str, workspace_id: str | None, **overrides: Any) -> str:
        return self.sign(access_claims(user_id, workspace_id, **overrides))

    def service_token(self, scopes: tuple[str, ...] | None = None, client_id: str = "worker", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": client_id,
            "typ": "service",
            "scope": " ".join(self.default_scopes if scopes is None else scopes),
            "jti": uuid.uuid4().hex,
            "iss": "owr-auth",
            "aud": self.service_audience,
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return self.sign(claims)
