"""API tokens (`owr_…`) at the gateway: name their cache entry, and ask auth about a token not cached.

The cache entry is `owr:apitoken:{HMAC-SHA-256(pepper, token)}`, the name auth computes from the hash it
stores, so revoking a token deletes it and the next request goes back to introspection (and fails).
The entry holds the short-lived JWT auth minted for the token; the gateway forwards that JWT, never
the token itself, and never keeps the answer beyond what auth allowed (at most 60 s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from owr_shared.logging import get_logger
from owr_shared.wire import redis_keys

log = get_logger("owr.gateway.tokens")

TOKEN_PREFIX = b"owr_"
CACHE_PREFIX = redis_keys.API_TOKEN_CACHE
# Prefixed to a cache entry's name: auth lately said that token is not active.
NEGATIVE_PREFIX = "owr:inactive:"


class IntrospectionUnavailable(Exception):
    """auth could not be asked (down, slow, or refusing the gateway's credentials)."""


@dataclass(frozen=True, slots=True)
class ActiveToken:
    """What the gateway keeps of an active token: the JWT to forward and what the limiter needs."""

    token_id: str
    user_id: str
    workspace_id: str | None
    jwt: str
    issued_at: float
    rate_limit_per_minute: int | None
    cache_seconds: int

    def cache_fields(self) -> dict[str, str | int | float]:
        fields: dict[str, str | int | float] = {
            "jwt": self.jwt,
            "tid": self.token_id,
            "uid": self.user_id,
            "iat": self.issued_at,
        }
        if self.workspace_id:  # the membership whose cut-off sends the token back to introspection
            fields["wid"] = self.workspace_id
        if self.rate_limit_per_minute is not None:
            fields["limit"] = self.rate_limit_per_minute
        return fields


def is_api_token(bearer: bytes) -> bool:
    return bearer.startswith(TOKEN_PREFIX)


class TokenIntrospector:
    """Calls auth's `POST /internal/tokens/introspect` with the gateway's client credentials."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        pepper: bytes,
        client_id: str,
        secret: str,
        timeout: float,
    ) -> None:
        self._session = session
        self._url = f"{auth_url}/internal/tokens/introspect"
        self._pepper = pepper
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def cache_key(self, token: bytes) -> str:
        return CACHE_PREFIX + hmac.new(self._pepper, token, hashlib.sha256).hexdigest()

    async def introspect(self, token: bytes, headers: dict[str, str]) -> ActiveToken | None:
        """The active token's grant, or None when auth says it is not active (unknown, revoked, expired)."""
        try:
            async with self._session.post(
                self._url,
                json={"token": token.decode("ascii", "replace")},
                headers={**self._headers, **headers},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    # Never log the body: it could echo what was sent.
                    log.warning("token_introspection_refused", status=response.status)
                    raise IntrospectionUnavailable(f"auth answered {response.status}")
                answer: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("token_introspection_failed", error_type=type(exc).__name__)
            raise IntrospectionUnavailable(type(exc).__name__) from None
        if not answer.get("active"):
            return None
        try:
            return ActiveToken(
                token_id=str(answer["token_id"]),
                user_id=str(answer["user_id"]),
                workspace_id=str(answer["workspace_id"]) if answer.get("workspace_id") else None,
                jwt=str(answer["access_token"]),
                issued_at=_issued_at(str(answer["access_token"])),
                rate_limit_per_minute=answer.get("rate_limit_per_minute"),
                cache_seconds=int(answer.get("cache_seconds") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntrospectionUnavailable("malformed introspection") from exc


def _issued_at(jwt: str) -> float:
    """The `iat` of a JWT auth just minted for us (no verification needed: it came over the internal
    API; the services verify it anyway). The limiter compares it with the user's revocation mark."""
    payload = jwt.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    claims: dict[str, Any] = orjson.loads(base64.urlsafe_b64decode(payload))
    return float(claims["iat"])  # to the millisecond: the revocation mark is compared sub-second
