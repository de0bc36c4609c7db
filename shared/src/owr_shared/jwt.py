"""JWT verification against a cached JWKS that refreshes when it meets an unknown `kid`.

Every service verifies identity itself (defence in depth), with the algorithm pinned, the
registered claims required, a small leeway and a `typ` check, so a token minted for one purpose
cannot be replayed for another.

A verified token's principal is kept (keyed by a digest of the whole token) until the token's own
`exp`, and only while the key that signed it is still in the JWKS: parsing and checking a token is
most of an authenticated read's CPU after its queries, and a client sends the same token for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from owr_shared.errors import INVALID_TOKEN, Unauthorized

REQUIRED_CLAIMS = ("sub", "typ", "jti", "iss", "aud", "iat", "exp")
JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class InvalidToken(Unauthorized):
    status, slug, title = INVALID_TOKEN


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a verified JWT."""

    subject: str
    token_type: str
    token_id: str
    expires_at: int
    issued_at: int
    workspace_id: str | None = None
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # `email_verified`: auth says the person's address was verified when it minted the token. A token
    # without the claim counts as unverified (fail closed).
    email_verified: bool = False
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    scope = claims.get("scope")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    return Principal(
        subject=str(claims["sub"]),
        token_type=str(claims["typ"]),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        issued_at=int(claims["iat"]),
        workspace_id=str(claims["wid"]) if claims.get("wid") is not None else None,
        role=str(claims["role"]) if claims.get("role") is not None else None,
        scopes=scopes,
        email_verified=claims.get("email_verified") is True,
        claims=claims,
    )


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    kid: str
    key: PyJWK  # the very key object that verified it: a rotated or withdrawn key drops the entry


def httpx_jwks_fetcher(client: httpx.AsyncClient, url: str) -> JwksFetcher:
    async def fetch() -> dict[str, Any]:
        response = await client.get(url, timeout=3.0)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    return fetch


class JwksVerifier:
    """Verify JWTs with keys from a JWKS, fetched lazily and refreshed on an unknown `kid`."""

    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str,
        audience: str | Iterable[str],
        algorithms: Iterable[str] = ("EdDSA",),
        leeway: int = 30,
        max_lifetime: int = 15 * 60,
        min_refresh_interval: float = 10.0,
        max_age: float = 300.0,
        cache_size: int = 4096,
    ) -> None:
        self._fetch = fetch_jwks
        self._issuer = issuer
        self._audience = [audience] if isinstance(audience, str) else list(audience)
        self._algorithms = frozenset(algorithms)
        self._leeway = min(leeway, 60)
        self._max_lifetime = max_lifetime
        self._min_refresh_interval = min_refresh_interval
        # Keys removed from the JWKS (retired, or withdrawn after a leak) stop being trusted within this.
        self._max_age = max_age
        self._keys: dict[str, PyJWK] = {}
        self._documents: dict[str, dict[str, Any]] = {}
        self._last_refresh = float("-inf")
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._cache_size = cache_size

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the JWKS, at most once per `min_refresh_interval` unless forced."""
        async with self._lock:
            if not force and time.monotonic() - self._last_refresh < self._min_refresh_interval:
                return
            self._last_refresh = time.monotonic()
            document = await self._fetch()
            keys: dict[str, PyJWK] = {}
            documents: dict[str, dict[str, Any]] = {}
            for jwk in document.get("keys", []):
                kid = jwk.get("kid")
                if not kid or jwk.get("use", "sig") != "sig":
                    continue
                # An unchanged key keeps its object, so the tokens it verified stay cached.
                known = self._keys.get(kid)
                if known is not None and self._documents.get(kid) == jwk:
                    keys[kid], documents[kid] = known, jwk
                    continue
                try:
                    key = PyJWK(jwk)
                except jwt.PyJWTError:
                    continue
                if key.algorithm_name in self._algorithms:
                    keys[kid], documents[kid] = key, jwk
            self._keys, self._documents = keys, documents

    async def _refresh_when_old(self) -> None:
        if time.monotonic() - self._last_refresh > self._max_age:
            # A failed periodic reload keeps the known keys (auth down must not log everyone out);
            # it is retried after `min_refresh_interval`.
            with contextlib.suppress(Exception):
                await self.refresh()

    async def _key_for(self, kid: str) -> PyJWK:
        await self._refresh_when_old()
        key = self._keys.get(kid)
        if key is None:
            try:
                await self.refresh()
            except Exception as exc:  # JWKS unreachable: the token cannot be verified now
                raise InvalidToken("The token's signing key could not be loaded.") from exc
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("The token was signed by an unknown key.")
        return key

    async def verify(self, token: str, *, expected_types: Iterable[str] = ("access",)) -> Principal:
        """Return the verified principal or raise `InvalidToken` (a 401 problem)."""
        digest = hashlib.blake2b(token.encode(), digest_size=32).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            await self._refresh_when_old()
            if time.time() < cached.principal.expires_at and self._keys.get(cached.kid) is cached.key:
                self._verified.move_to_end(digest)
                return _of_type(cached.principal, expected_types)
            self._verified.pop(digest, None)
        verified = await self._verify_uncached(token)
        if self._cache_size > 0 and time.time() < verified.principal.expires_at:
            self._verified[digest] = verified
            if len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return _of_type(verified.principal, expected_types)

    async def _verify_uncached(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("The token is malformed.") from exc
        alg = header.get("alg")
        kid = header.get("kid")
        # `alg` may be any JSON value: a list or object is unhashable, so test its type before the set.
        if not isinstance(alg, str) or alg not in self._algorithms or not isinstance(kid, str):
            raise InvalidToken("The token's algorithm or key id is not accepted.")
        key = await self._key_for(kid)
        if key.algorithm_name != alg:
            raise InvalidToken("The token's algorithm does not match its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("The token is not valid.") from exc
        if not isinstance(claims.get("typ"), str):  # any JSON value may stand there; the type is checked per call
            raise InvalidToken("The token is not of an accepted type.")
        if int(claims["exp"]) - int(claims["iat"]) > self._max_lifetime:
            raise InvalidToken("The token lives longer than allowed.")
        return _Verified(principal_from_claims(claims), kid, key)


def _of_type(principal: Principal, expected_types: Iterable[str]) -> Principal:
    if principal.token_type not in set(expected_types):
        raise InvalidToken("The token is not of an accepted type.")
    return principal
