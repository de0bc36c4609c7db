"""Minting access JWTs and service JWTs with the active key of the keyring.

Both carry the header `typ: at+jwt` (RFC 9068: they are OAuth access tokens); the `typ` claim
(`access` or `service`) is what verifiers check, so neither can be used in place of the other.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import ALGORITHM, Keyring

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
SERVICE_TOKEN_TYPE = "service"  # noqa: S105 - a claim value, not a secret
ACCESS_TOKEN_HEADER_TYPE = "at+jwt"  # noqa: S105 - RFC 9068 media type, not a secret


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int
    token_id: str
    issued_at: float


@dataclass(frozen=True, slots=True)
class ServiceToken:
    token: str
    expires_in: int
    token_id: str
    scopes: tuple[str, ...]


def mint_access_token(
    keyring: Keyring,
    settings: AuthSettings,
    *,
    user_id: uuid.UUID,
    workspace_id: uuid.UUID,
    role: str,
    email_verified: bool,
    now: float | None = None,
    api_token: tuple[uuid.UUID, Iterable[str]] | None = None,
    session_id: uuid.UUID | None = None,
    ttl: int | None = None,
) -> AccessToken:
    """Sign an access token for `user_id` acting in `workspace_id` with `role`.

    `api_token` = (token id, scopes) mints the short-lived token an API-token caller acts with: it carries
    `tid` and `scope`, and services allow it only what its scopes name. `session_id` (the refresh-token
    family) becomes `sid`, which logout and refresh-token reuse put on the gateway's denylist.

    `iat` has millisecond precision (RFC 7519 allows a non-integer NumericDate), so a revocation cut-off
    refuses a token minted earlier in the same second and admits one minted after it.

    `email_verified` (the person's address is verified now) lets every service refuse what an unverified
    account may not do (`owr_shared.auth.check_email_verified`) without asking auth.
    """
    issued_at = math.floor((time.time() if now is None else now) * 1000) / 1000
    ttl = min(ttl or settings.access_token_ttl_seconds, settings.access_token_ttl_seconds)
    token_id = uuid.uuid4().hex
    claims: dict[str, object] = {
        "sub": str(user_id),
        "wid": str(workspace_id),
        "role": role,
        "email_verified": email_verified,
        "typ": ACCESS_TOKEN_TYPE,
        "jti": token_id,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": issued_at,
        "exp": int(issued_at) + ttl,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if api_token is not None:
        claims["tid"] = str(api_token[0])
        claims["scope"] = " ".join(sorted(api_token[1]))
    token = _sign(keyring, claims)
    return AccessToken(token=token, expires_in=ttl, token_id=token_id, issued_at=issued_at)


def _sign(keyring: Keyring, claims: dict[str, object]) -> str:
    """Both token kinds share header and key; only the `typ` claim tells them apart."""
    return jwt.encode(
        claims,
        keyring.private_key,
        algorithm=ALGORITHM,
        headers={"kid": keyring.active_kid, "typ": ACCESS_TOKEN_HEADER_TYPE},
    )


def mint_service_token(
    keyring: Keyring,
    settings: AuthSettings,
    *,
    client_id: str,
    audience: str,
    scopes: Iterable[str],
    now: int | None = None,
) -> ServiceToken:
    """Sign a service token for `client_id` calling the service `audience` with `scopes`."""
    issued_at = int(time.time()) if now is None else now
    ttl = settings.service_token_ttl_seconds
    token_id = uuid.uuid4().hex
    ordered = tuple(sorted(set(scopes)))
    claims = {
        "sub": client_id,
        "typ": SERVICE_TOKEN_TYPE,
        "scope": " ".join(ordered),
        "jti": token_id,
        "iss": settings.jwt_issuer,
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + ttl,
    }
    token = _sign(keyring, claims)
    return ServiceToken(token=token, expires_in=ttl, token_id=token_id, scopes=ordered)
