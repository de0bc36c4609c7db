"""Sessions in Redis: start one from a token pair, load and refresh it per request, end it.

The cookie holds an opaque random id; Redis keys it by the id's SHA-256, so a read of Redis does not give
usable cookies. A session ends `session_lifetime_seconds` after sign-in or `session_idle_seconds` after
its last request (the Redis TTL is the sooner of the two). The access token is refreshed when it has
less than `refresh_margin_seconds` left, by one request at a time: auth treats a refresh token used twice
as stolen and revokes the whole family, so concurrent requests of one session must not both refresh.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_web.api.client import Api, read_json
from owr_web.api.errors import ApiUnavailable, PageNotFound
from owr_web.metrics import SESSIONS
from owr_web.sessions.errors import SessionStoreUnavailable, SignedOut
from owr_web.sessions.schemas import WebSession
from owr_web.settings import WebSettings

log = get_logger(__name__)

_PREFIX = "owr:web:session:"
_REFRESH_LOCK = "owr:web:refresh:"
# A value shown once after a redirect (a channel's new signing secret): kept this long at most, then gone.
_ONCE = "owr:web:once:"
ONCE_SECONDS = 120
# Set one field of the stored session in place, keeping its expiry: never a write-back of a copy read
# earlier, which could put back a refresh token another request has rotated since.
_SET_VERIFIED = """
local raw = redis.call('get', KEYS[1])
if not raw then return 0 end
local session = cjson.decode(raw)
session['email_verified'] = ARGV[1] == '1'
local ttl = redis.call('pttl', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('set', KEYS[1], cjson.encode(session), 'px', ttl)
return 1
"""
# Delete the lock only if it is still ours: a refresh that outlived it must not free another's.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _key(session_id: str) -> str:
    return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def token_claims(access_token: str) -> dict[str, Any]:
    """The claims of an access token web holds (it came from auth through the gateway; the services verify
    it): only to know which workspace and role the pages show, never to decide anything."""
    try:
        payload = access_token.split(".")[1]
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims


async def _list_workspaces(api: Api, access_token: str) -> list[dict[str, Any]] | None:
    """The person's workspaces (the first hundred: the header's switcher), or None when the API is away."""
    answer = await api.call("GET", "/api/v1/workspaces", params={"per_page": 100}, token=access_token)
    if answer.status_code != 200:
        return None
    fields = ("id", "name", "role", "personal")
    return [{name: item[name] for name in fields} for item in read_json(answer)["items"]]


def session_ref(session_id: str) -> str:
    """A short, non-secret name of a session for logs (never the id itself)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


class SessionStore:
    def __init__(self, redis: Redis, settings: WebSettings) -> None:
        self._redis = redis
        self._settings = settings

    def _ttl(self, session: WebSession, now: float) -> int:
        left = session.created_at + self._settings.session_lifetime_seconds - now
        return max(1, int(min(left, self._settings.session_idle_seconds)))

    async def _save(self, session_id: str, session: WebSession, now: float) -> None:
        try:
            await self._redis.set(_key(session_id), json.dumps(session.to_json()), ex=self._ttl(session, now))
        except RedisError:
            raise SessionStoreUnavailable() from None

    async def start(self, pair: dict[str, Any], email: str, api: Api, *, email_verified: bool = True) -> str:
        """A new session for a token pair from sign-in; its id (for the cookie)."""
        now = time.time()
        session_id = secrets.token_urlsafe(32)
        session = WebSession(
            access_token=pair["access_token"],
            refresh_token=pair["refresh_token"],
            access_expires_at=now + int(pair["expires_in"]),
            csrf_token=secrets.token_urlsafe(32),
            email=email,
            created_at=now,
            email_verified=email_verified,
        )
        await self._adopt(session, pair, api, now, force=True)
        await self._save(session_id, session, now)
        SESSIONS.labels("started").inc()
        log.info("web_session_started", session=session_ref(session_id))
        return session_id

    async def load(self, session_id: str) -> WebSession | None:
        """The live session, touched (its idle clock restarts); None when it ended or never was.

        Touching moves the key's expiry only: writing the session back here could put back a refresh token
        another request has just rotated (auth would then revoke the whole family at the next refresh).
        """
        key = _key(session_id)
        try:
            raw = await self._redis.get(key)
            if raw is None:
                return None
            session = WebSession.from_json(json.loads(raw))
            now = time.time()
            if now >= session.created_at + self._settings.session_lifetime_seconds:
                await self.end(session_id, reason="expired")
                return None
            await self._redis.expire(key, self._ttl(session, now))
        except RedisError:
            raise SessionStoreUnavailable() from None
        return session

    async def _adopt(self, session: WebSession, pair: dict[str, Any], api: Api, now: float, *, force: bool) -> None:
        """Take a new token pair; when its workspace or role differ (a switch, a removal, a role change),
        or `force`, list the person's workspaces again for the header's switcher."""
        session.access_token = pair["access_token"]
        session.refresh_token = pair["refresh_token"]
        session.access_expires_at = now + int(pair["expires_in"])
        claims = token_claims(session.access_token)
        if isinstance(claims.get("email_verified"), bool):  # the banner follows what auth said at minting
            session.email_verified = claims["email_verified"]
        workspace_id, role = str(claims.get("wid", "")), str(claims.get("role", ""))
        if force or (workspace_id, role) != (session.workspace_id, session.role):
            session.workspace_id, session.role = workspace_id, role
            listed = await _list_workspaces(api, session.access_token)
            if listed is not None:
                session.workspaces = listed

    def renewer(self, session_id: str, api: Api) -> Callable[[str], Awaitable[str]]:
        """What `api` calls when the gateway refused its access token before it expired (the person's role
        there was lowered, or they left the workspace): a refresh, and the new token (SignedOut if none)."""

        async def renew(stale: str) -> str:
            current = await self.load(session_id)
            if current is None:
                raise SignedOut()
            return (await self.fresh(session_id, current, api, stale=stale)).access_token

        return renew

    async def renew(self, session_id: str, session: WebSession, api: Api) -> WebSession:
        """A new token pair now, whatever the current token's time left: what auth minted into it changed (the
        address was verified) and the next API call must carry it."""
        return await self.fresh(session_id, session, api, stale=session.access_token)

    async def verified_now(self, session_id: str, session: WebSession, api: Api) -> None:
        """The API says this person's address is verified (checked elsewhere, or just now): the banner goes,
        and a token that still says otherwise is renewed, so channels are allowed from the next call on."""
        if not session.email_verified:
            session.email_verified = True
            await self.set_email_verified(session_id, True)
        if token_claims(session.access_token).get("email_verified") is False:
            # A refresh that cannot happen now happens within the token's minutes anyway.
            with contextlib.suppress(SignedOut, ApiUnavailable, SessionStoreUnavailable):
                await self.renew(session_id, session, api)

    async def fresh(self, session_id: str, session: WebSession, api: Api, *, stale: str | None = None) -> WebSession:
        """The session with an access token good for at least the margin (and not `stale`, a token the
        gateway refused); refreshes it when needed, one request of the session at a time."""
        margin = self._settings.refresh_margin_seconds

        def usable(candidate: WebSession) -> bool:
            if stale is not None:
                return candidate.access_token != stale
            return candidate.access_expires_at - time.time() > margin

        if usable(session):
            return session
        lock = _REFRESH_LOCK + _key(session_id)
        # The lock outlives the longest refresh call, so no second refresh can start with the same token.
        lock_ms = int((self._settings.api_timeout_seconds + 5) * 1000)
        try:
            holder = secrets.token_hex(8)
            if await self._redis.set(lock, holder, nx=True, px=lock_ms):
                try:
                    # Another request may have refreshed between this one's load and the lock.
                    current = await self.load(session_id)
                    if current is None:
                        raise SignedOut()
                    if usable(current):
                        return current
                    return await self._refresh(session_id, current, api)
                finally:
                    await self._redis.eval(_RELEASE, 1, lock, holder)  # type: ignore[misc]
            # Another request of this session refreshes: wait for its new token.
            deadline = time.monotonic() + self._settings.api_timeout_seconds + 5
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                current = await self.load(session_id)
                if current is None:
                    raise SignedOut()
                if usable(current):
                    return current
        except RedisError:
            raise SessionStoreUnavailable() from None
        # The refresh is slow, not refused: the session lives on; this request is a 503, not a sign-out.
        raise SessionStoreUnavailable()

    async def _refresh(self, session_id: str, session: WebSession, api: Api) -> WebSession:
        response = await api.call("POST", "/api/v1/auth/refresh", json_body={"refresh_token": session.refresh_token})
        if response.status_code in (400, 401, 422):
            # The family was revoked (logout elsewhere, password change, reuse): sign in again.
            await self.end(session_id, reason="refresh_refused")
            raise SignedOut()
        if response.status_code != 200:
            # A rate limit or an outage: the session is still good; this request is a 503.
            raise ApiUnavailable()
        now = time.time()
        await self._adopt(session, read_json(response), api, now, force=False)
        await self._save(session_id, session, now)
        SESSIONS.labels("refreshed").inc()
        return session

    async def switch(self, session_id: str, api: Api, workspace_id: str) -> WebSession:
        """Move the session to another of the person's workspaces (`POST /api/v1/auth/switch`), under the
        session's refresh lock: the switch retires the refresh token, as a refresh does."""
        lock = _REFRESH_LOCK + _key(session_id)
        lock_ms = int((self._settings.api_timeout_seconds + 5) * 1000)
        holder = secrets.token_hex(8)
        try:
            deadline = time.monotonic() + self._settings.api_timeout_seconds + 5
            while not await self._redis.set(lock, holder, nx=True, px=lock_ms):
                if time.monotonic() > deadline:
                    raise SessionStoreUnavailable()
                await asyncio.sleep(0.05)
            try:
                current = await self.load(session_id)
                if current is None:
                    raise SignedOut()
                answer = await api.call(
                    "POST", "/api/v1/auth/switch", json_body={"workspace_id": workspace_id}, token=current.access_token
                )
                if answer.status_code == 401:
                    raise SignedOut()
                if answer.status_code == 404:
                    raise PageNotFound()
                if answer.status_code != 200:
                    raise ApiUnavailable()
                pair = read_json(answer)
                now = time.time()
                await self._adopt(current, pair, api, now, force=True)
                await self._save(session_id, current, now)
                return current
            finally:
                await self._redis.eval(_RELEASE, 1, lock, holder)  # type: ignore[misc]
        except RedisError:
            raise SessionStoreUnavailable() from None

    async def relist(self, session_id: str, api: Api) -> None:
        """List the person's workspaces again (one was made, joined or renamed)."""
        current = await self.load(session_id)
        if current is None:
            return
        listed = await _list_workspaces(api, current.access_token)
        if listed is not None:
            current.workspaces = listed
            await self._save(session_id, current, time.time())

    async def set_email_verified(self, session_id: str, verified: bool) -> None:
        """Record what the API said of the address (the verification banner follows it)."""
        try:
            await self._redis.eval(_SET_VERIFIED, 1, _key(session_id), "1" if verified else "0")  # type: ignore[misc]
        except RedisError:
            raise SessionStoreUnavailable() from None

    async def end(self, session_id: str, *, reason: str) -> None:
        try:
            await self._redis.delete(_key(session_id))
        except RedisError:
            raise SessionStoreUnavailable() from None
        SESSIONS.labels("expired" if reason == "expired" else "ended").inc()
        log.info("web_session_ended", session=session_ref(session_id), reason=reason)

    async def hold_once(self, session_id: str, name: str, value: str) -> None:
        """Keep `value` for this session's next `take_once(name)`: a secret answered by a post is shown by the
        page the post redirects to, so reloading that page neither posts again nor shows it again."""
        try:
            await self._redis.set(_ONCE + _key(session_id) + ":" + name, value, ex=ONCE_SECONDS)
        except RedisError:
            raise SessionStoreUnavailable() from None

    async def take_once(self, session_id: str, name: str) -> str | None:
        """The value held under `name`, deleted in the same step; None when there is none (any more)."""
        key = _ONCE + _key(session_id) + ":" + name
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.delete(key)
                value, _ = await pipe.execute()
        except RedisError:
            raise SessionStoreUnavailable() from None
        return value.decode() if isinstance(value, bytes) else value
