"""Bearer-JWT authentication with an in-process cache of verified tokens.

Signature checks dominate a Python gateway's per-request cost, so each token is verified once
and its principal kept, keyed by a digest of the whole token, until the token's own `exp`.
Revocation is still honoured on every request (the rate-limit script reads the mark).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import aiohttp

from owr_gateway.metrics import JWT_CACHE_HIT, JWT_CACHE_MISS
from owr_shared.jwt import InvalidToken, JwksFetcher, JwksVerifier

_BEARER = b"bearer "
_MAX_TOKEN_BYTES = 8192


class CachedPrincipal:
    """The parts of a verified access token the gateway needs."""

    __slots__ = ("expires_at", "issued_at", "session_id", "subject", "workspace_id")

    def __init__(
        self,
        subject: str,
        issued_at: float,
        expires_at: int,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> None:
        self.subject = subject
        self.issued_at = issued_at  # to the millisecond, as auth mints it: cut-offs are sub-second
        self.expires_at = expires_at
        self.session_id = session_id  # `sid`: logout and refresh-token reuse deny it at once
        self.workspace_id = workspace_id  # `wid`: removing the member or lowering their role cuts it off


def aiohttp_jwks_fetcher(session: aiohttp.ClientSession, url: str, timeout: float = 3.0) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            response.raise_for_status()
            data: dict[str, Any] = await response.json(content_type=None)
            return data

    return fetch


class Authenticator:
    """Turn an `Authorization` header into a principal, or raise `InvalidToken` (401)."""

    def __init__(self, verifier: JwksVerifier, cache_size: int) -> None:
        self._verifier = verifier
        self._cache: OrderedDict[bytes, CachedPrincipal] = OrderedDict()
        self._cache_size = cache_size

    async def authenticate(self, authorization: bytes | None) -> CachedPrincipal:
        if not authorization or authorization[:7].lower() != _BEARER:
            raise InvalidToken("A bearer token is required.")
        token = authorization[7:].strip()
        if not token or len(token) > _MAX_TOKEN_BYTES:
            raise InvalidToken("The token is malformed.")
        key = hashlib.blake2b(token, digest_size=16).digest()
        cache = self._cache
        cached = cache.get(key)
        if cached is not None:
            if time.time() < cached.expires_at:
                cache.move_to_end(key)
                JWT_CACHE_HIT.inc()
                return cached
            del cache[key]
        JWT_CACHE_MISS.inc()
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidToken("The token is malformed.") from None
        principal = await self._verifier.verify(text)
        iat, sid = principal.claims.get("iat"), principal.claims.get("sid")
        entry = CachedPrincipal(
            principal.subject,
            float(iat) if isinstance(iat, int | float) else principal.issued_at,
            principal.expires_at,
            sid if isinstance(sid, str) else None,
            principal.workspace_id,
        )
        if self._cache_size > 0 and time.time() < entry.expires_at:
            cache[key] = entry
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return entry
