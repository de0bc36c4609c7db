"""The second step of a login: a short-lived, single-use challenge bound to the first step.

A correct password for an account with two-factor sign-in on yields a challenge (`owrm_` + 256 random bits;
the prefix lets the log filter and secret scanners recognise it) instead of tokens. Redis keeps it under
the SHA-256 of its value, so a read of Redis gives no usable challenge, with what it is bound to: the user,
the client IP and user agent of the first step (the agent as a hash), and the password's change time, so a
password change in between ends it. It expires after `mfa_challenge_ttl_seconds` by the service's clock
(the Redis TTL is the same span, for cleanup), and the second step claims it by deleting it, so it works
at most once. A wrong code leaves it in place for another try, and the code throttle counts the guess.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_auth.sessions.errors import LoginUnavailable
from owr_auth.sessions.schemas import ClientInfo
from owr_shared.logging import get_logger

log = get_logger(__name__)

CHALLENGE_PREFIX = "owrm_"
_CHALLENGE_LENGTH = len(CHALLENGE_PREFIX) + 43
_KEY_PREFIX = "owr:mfa:challenge:"


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What a live challenge names: whose sign-in it continues, and the password state it was made under."""

    user_id: uuid.UUID
    password_changed_at: float


def _agent_hash(user_agent: str | None) -> str:
    return hashlib.sha256((user_agent or "").encode("utf-8")).hexdigest()


def _key(challenge: str) -> str:
    return _KEY_PREFIX + hashlib.sha256(challenge.encode("utf-8")).hexdigest()


class ChallengeStore:
    """Issue, look up and claim login challenges; Redis errors fail closed (`LoginUnavailable`, 503)."""

    def __init__(self, redis: Redis, *, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    async def issue(self, pending: PendingLogin, client: ClientInfo, *, now: float) -> str:
        challenge = CHALLENGE_PREFIX + secrets.token_urlsafe(32)
        record = {
            "user_id": str(pending.user_id),
            "password_changed_at": pending.password_changed_at,
            "ip": client.ip,
            "agent": _agent_hash(client.user_agent),
            "expires_at": now + self._ttl,
        }
        try:
            await self._redis.set(_key(challenge), json.dumps(record), ex=self._ttl)
        except (RedisError, OSError) as exc:
            log.error("mfa_challenge_unavailable", error_type=type(exc).__name__)
            raise LoginUnavailable() from exc
        return challenge

    async def find(self, challenge: str, client: ClientInfo, *, now: float) -> PendingLogin | None:
        """The login a live challenge continues, when this client made its first step; else None."""
        if not challenge.startswith(CHALLENGE_PREFIX) or len(challenge) != _CHALLENGE_LENGTH:
            return None
        try:
            raw = await self._redis.get(_key(challenge))
        except (RedisError, OSError) as exc:
            log.error("mfa_challenge_unavailable", error_type=type(exc).__name__)
            raise LoginUnavailable() from exc
        if raw is None:
            return None
        record = json.loads(raw)
        if record["expires_at"] <= now:
            return None
        if record["ip"] != client.ip or not secrets.compare_digest(record["agent"], _agent_hash(client.user_agent)):
            log.warning("mfa_challenge_client_mismatch", user_id=record["user_id"])
            return None
        return PendingLogin(uuid.UUID(record["user_id"]), float(record["password_changed_at"]))

    async def claim(self, challenge: str) -> bool:
        """Use the challenge up; False when another request already did (it works once)."""
        try:
            return bool(await self._redis.delete(_key(challenge)))
        except (RedisError, OSError) as exc:
            log.error("mfa_challenge_unavailable", error_type=type(exc).__name__)
            raise LoginUnavailable() from exc
