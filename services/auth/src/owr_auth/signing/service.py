"""Minting access JWTs with the active key of the keyring."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import ALGORITHM, Keyring

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
ACCESS_TOKEN_HEADER_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 media type, not a secret


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    token_id: str
    issued_at: int


def mint_access_token(
    keyring: Keyring,
    settings: AuthSettings,
    *,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID,
    role: str,
    now: int | None = None,
) -> AccessToken:
    """Sign an access token for `user_id` acting in `workspace_id` with `role`."""
    issued_at = int(time.time()) if now is None else now
    ttl = settings.access_token_ttl_seconds
    token_id = uuid.uuid4().hex
    claims = {
        "sub": str(user_id),
        "wid": str(workspace_id),
        "role": role,
        "typ": ACCESS_TOKEN_TYPE,
        "jti": token_id,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued_at,
        "exp": issued_at + ttl,
    }
    token = jwt.encode(
        claims,
        keyring.private_key,
        algorithm=ALGORITHM,
        headers={"kid": keyring.active_kid, "typ": ACCESS_TOKEN_HEADER_TYPE},
    )
    return AccessToken(token=token, expires_in=ttl, token_id=token_id, issued_at=issued_at)
