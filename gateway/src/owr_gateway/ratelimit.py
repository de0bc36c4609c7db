"""Fixed-window rate limiting in Redis (one Lua call that also reads the revocation mark).

When Redis fails or is slow, the `login` policy fails closed and the others fall back to a
per-process in-memory window with the same limits; a small breaker then skips Redis for a moment
so each request does not pay the timeout again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping

from redis.asyncio import Redis

from owr_gateway.metrics import RATELIMIT_BACKEND_ERRORS, RATELIMIT_DECISIONS
from owr_gateway.scriptbatch import ScriptBatcher, bulk
from owr_gateway.settings import RateLimitPolicy
from owr_shared.logging import get_logger
from owr_shared.wire import redis_keys

log = get_logger("owr.gateway.ratelimit")

# KEYS[1] counter; for a user's JWT also KEYS[2] the user's revocation mark, KEYS[3] the membership's
# (the token's user in the token's workspace: removed or lowered) and KEYS[4] (optional) the session's
# denylist entry; ARGV[1] window ms, ARGV[2] token iat (seconds, to the millisecond).
# Returns the new count, or -1 when the token was issued before the user's or the membership's mark, or
# its session was ended (a revoked token does not consume the user's budget).
RATE_LIMIT_LUA = """
if #KEYS >= 3 then
  local iat = tonumber(ARGV[2])
  for i = 2, 3 do
    local cutoff = tonumber(redis.call('GET', KEYS[i]) or '')
    if cutoff and iat < cutoff then
      return -1
    end
  end
  if #KEYS == 4 and redis.call('EXISTS', KEYS[4]) == 1 then
    return -1
  end
end
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
"""

# The API-token path in one round trip: KEYS[1] the token's cached introspection (a hash written by
# `store_token`); ARGV[1] counter prefix, ARGV[2] window start, ARGV[3] window ms, ARGV[4] revocation
# prefix, ARGV[5..7] the same three for the owner's "user" bucket, ARGV[8] the membership mark's prefix.
# Returns {0} on a cache miss, and when the entry predates its membership's mark (so the token is
# introspected again: auth answers with the lowered role, or not active for a removed member); {-1}
# when the user's sessions were revoked after the JWT was minted; else {count, jwt, per-token limit or
# '', token id, user count}: one counter per token id, and the owner's, which their sessions share.
GRANT_LUA = """
local entry = redis.call('HMGET', KEYS[1], 'jwt', 'tid', 'uid', 'iat', 'limit', 'wid')
if not entry[1] then
  return {0}
end
local revoked = tonumber(redis.call('GET', ARGV[4] .. entry[3]) or '')
if revoked and tonumber(entry[4]) < revoked then
  return {-1}
end
if entry[6] then
  local cutoff = tonumber(redis.call('GET', ARGV[8] .. entry[6] .. ':' .. entry[3]) or '')
  if cutoff and tonumber(entry[4]) < cutoff then
    return {0}
  end
end
local counter = ARGV[1] .. entry[2] .. ':' .. ARGV[2]
local count = redis.call('INCR', counter)
if count == 1 then
  redis.call('PEXPIRE', counter, ARGV[3])
end
local user_counter = ARGV[5] .. entry[3] .. ':' .. ARGV[6]
local user_count = redis.call('INCR', user_counter)
if user_count == 1 then
  redis.call('PEXPIRE', user_counter, ARGV[7])
end
return {count, entry[1], entry[5] or '', entry[2], user_count}
"""

# An API token the cache does not know: KEYS[1] its negative entry (auth said "not active" lately),
# KEYS[2] the client's failed-authentication counter. Returns {negative (0/1), failures so far}.
UNKNOWN_GRANT_LUA = """
return {redis.call('EXISTS', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0')}
"""

FAIL_CLOSED_POLICIES = frozenset({"login"})
REVOKED_KEY_PREFIX = redis_keys.REVOKED_USER
REVOKED_SESSION_PREFIX = redis_keys.REVOKED_SESSION
REVOKED_MEMBER_PREFIX = redis_keys.REVOKED_MEMBER
_LOCAL_MAX_SUBJECTS = 100_000

ALLOWED = "allowed"
LIMITED = "limited"
REVOKED = "revoked"
UNAVAILABLE = "unavailable"
MISS = "miss"
TOKEN_POLICY = "token"  # noqa: S105 - a policy name
USER_POLICY = "user"
AUTH_FAILURE_POLICY = "auth_failure"

Headers = list[tuple[bytes, bytes]]


class Decision:
    """The outcome of one rate-limit check, with the response headers it implies.

    For an API token it also carries the JWT to forward (`upstream_token`) from the cached introspection.
    """

    __slots__ = ("headers", "outcome", "retry_after", "upstream_token")

    def __init__(self, outcome: str, headers: Headers, retry_after: int = 0, upstream_token: str | None = None) -> None:
        self.outcome = outcome
        self.headers = headers
        self.retry_after = retry_after
        self.upstream_token = upstream_token


class _Policy:
    """A policy with everything the hot path needs precomputed."""

    __slots__ = (
        "fail_closed",
        "key_prefix",
        "limit",
        "limit_bytes",
        "name",
        "name_bytes",
        "policy_header",
        "window",
        "window_ms_bulk",
    )

    def __init__(self, name: str, config: RateLimitPolicy) -> None:
        self.name = name
        self.limit = config.limit
        self.window = config.window
        self.window_ms_bulk = bulk(b"%d" % (config.window * 1000))
        self.key_prefix = f"owr:rl:{name}:"
        self.name_bytes = name.encode()
        self.limit_bytes = str(config.limit).encode()
        # IETF httpapi-ratelimit-headers structured-field form.
        self.policy_header = b'"%s";q=%d;w=%d' % (self.name_bytes, config.limit, config.window)
        self.fail_closed = name in FAIL_CLOSED_POLICIES


class LocalWindow:
    """Per-process fixed windows: the fallback while Redis is unavailable."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = {}

    def hit(self, policy: str, subject: str, window_start: int) -> int:
        key = (policy, subject)
        entry = self._counts.get(key)
        if entry is None or entry[0] != window_start:
            if len(self._counts) >= _LOCAL_MAX_SUBJECTS:
                self._prune(window_start)
            self._counts[key] = [window_start, 1]
            return 1
        entry[1] += 1
        return entry[1]

    def _prune(self, window_start: int) -> None:
        stale = [k for k, v in self._counts.items() if v[0] < window_start]
        for k in stale:
            del self._counts[k]
        if len(self._counts) >= _LOCAL_MAX_SUBJECTS:
            self._counts.clear()  # memory bound beats precision during an outage


class RateLimiter:
    """One decision per request: Redis first, the local window when Redis is unavailable."""

    def __init__(
        self,
        redis: Redis,
        policies: Mapping[str, RateLimitPolicy],
        *,
        timeout: float,
        breaker_seconds: float = 1.0,
    ) -> None:
        self._redis = redis
        self._batcher = ScriptBatcher(redis, redis.register_script(RATE_LIMIT_LUA), timeout=timeout)
        self._token_batcher = ScriptBatcher(redis, redis.register_script(GRANT_LUA), timeout=timeout)
        self._token_miss = redis.register_script(UNKNOWN_GRANT_LUA)
        self._timeout = timeout
        self._policies = {name: _Policy(name, config) for name, config in policies.items()}
        # Policies of tokens with their own per-minute limit, made on first use (a handful in practice).
        self._token_policies: dict[int, _Policy] = {}
        user, token = self._policies[USER_POLICY], self._policies[TOKEN_POLICY]
        # No token may allow more than its owner may: its limit is capped at the user policy's rate.
        self._token_cap = max(1, user.limit * token.window // user.window)
        if token.limit > self._token_cap:
            self._policies[TOKEN_POLICY] = self._token_policy(token.limit)
        self._breaker_seconds = breaker_seconds
        self._skip_redis_until = 0.0
        self._local = LocalWindow()
        self._metrics = {
            (name, decision, backend): RATELIMIT_DECISIONS.labels(name, decision, backend)
            for name in self._policies
            for decision in (ALLOWED, LIMITED, UNAVAILABLE)
            for backend in ("redis", "local")
        }

    async def check(
        self,
        policy_name: str,
        subject: str,
        *,
        user_id: str | None = None,
        issued_at: float = 0,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> Decision:
        """Count one request of `subject` under `policy_name`; with `user_id` (and the token's `wid` and
        `sid`), also check the user's, the membership's and the session's revocation in the same call."""
        policy = self._policies[policy_name]
        now = time.time()
        window = policy.window
        window_start = int(now // window) * window
        reset = max(1, math.ceil(window_start + window - now))
        count = 0
        backend = "redis"
        if time.monotonic() >= self._skip_redis_until:
            key = bulk(f"{policy.key_prefix}{subject}:{window_start}".encode())
            batcher = self._batcher
            if user_id is None:
                command = batcher.prefix_one_key + key + policy.window_ms_bulk
            else:
                revoked_key = bulk(f"{REVOKED_KEY_PREFIX}{user_id}".encode())
                member_key = bulk(f"{REVOKED_MEMBER_PREFIX}{workspace_id or ''}:{user_id}".encode())
                iat = bulk(b"%.3f" % issued_at)
                if session_id is None:
                    command = batcher.prefix_three_keys + key + revoked_key + member_key + policy.window_ms_bulk + iat
                else:
                    sid_key = bulk(f"{REVOKED_SESSION_PREFIX}{session_id}".encode())
                    command = (
                        batcher.prefix_four_keys
                        + key
                        + revoked_key
                        + member_key
                        + sid_key
                        + policy.window_ms_bulk
                        + iat
                    )
            try:
                # The batcher bounds each round trip by the Redis timeout.
                count = int(await batcher.call(command))
            except Exception as exc:  # any Redis failure (refused, timeout, script error) means "unavailable"
                self._open_breaker(exc)
                count = 0
        if count < 0:
            return Decision(REVOKED, [])
        if count == 0:
            if policy.fail_closed:
                self._metrics[(policy.name, UNAVAILABLE, "redis")].inc()
                retry = max(1, math.ceil(self._breaker_seconds))
                return Decision(UNAVAILABLE, [(b"ratelimit-policy", policy.policy_header)], retry)
            backend = "local"
            count = self._local.hit(policy.name, subject, window_start)
        return self._decide(policy, count, reset, backend)

    async def check_token(self, cache_key: str) -> Decision:
        """Count one request of an API token, from its cached introspection, in one round trip.

        MISS when nothing is cached, or what is predates a cut-off of its membership (the caller
        introspects, `store_token`s and checks again); REVOKED
        when the user's sessions were revoked; UNAVAILABLE when Redis is: API tokens fail closed, since
        their revocation must hold at once and Redis is where it is recorded.
        """
        default, user = self._policies[TOKEN_POLICY], self._policies[USER_POLICY]
        now = time.time()
        window_start = int(now // default.window) * default.window
        user_window_start = int(now // user.window) * user.window
        batcher = self._token_batcher
        command = (
            batcher.prefix_one_key_eight_args
            + bulk(cache_key.encode())
            + bulk(default.key_prefix.encode())
            + bulk(b"%d" % window_start)
            + default.window_ms_bulk
            + bulk(REVOKED_KEY_PREFIX.encode())
            + bulk(user.key_prefix.encode())
            + bulk(b"%d" % user_window_start)
            + user.window_ms_bulk
            + bulk(REVOKED_MEMBER_PREFIX.encode())
        )
        try:
            reply = await batcher.call(command)
        except Exception as exc:
            self._open_breaker(exc)
            self._metrics[(TOKEN_POLICY, UNAVAILABLE, "redis")].inc()
            return Decision(UNAVAILABLE, [(b"ratelimit-policy", default.policy_header)], 1)
        count = int(reply[0])
        if count == 0:
            return Decision(MISS, [])
        if count < 0:
            return Decision(REVOKED, [])
        user_count = int(reply[4])
        if user_count > user.limit:  # the owner's budget is spent, whichever token or session spent it
            return self._decide(user, user_count, max(1, math.ceil(user_window_start + user.window - now)), "redis")
        limit_raw = reply[2]
        policy = self._token_policy(int(limit_raw)) if limit_raw else default
        reset = max(1, math.ceil(window_start + policy.window - now))
        jwt = reply[1]
        return self._decide(policy, count, reset, "redis", jwt.decode() if isinstance(jwt, bytes) else str(jwt))

    async def token_miss(self, negative_key: str, client: str) -> tuple[bool, int]:
        """For a token the cache does not know: whether auth lately said it is not active, and how many
        authentications `client` failed in this window. Raises when Redis does (API tokens fail closed)."""
        policy = self._policies[AUTH_FAILURE_POLICY]
        window_start = int(time.time() // policy.window) * policy.window
        counter = f"{policy.key_prefix}{client}:{window_start}"
        async with asyncio.timeout(self._timeout):
            negative, failures = await self._token_miss(keys=[negative_key, counter])
        return bool(negative), int(failures)

    def failure_limit(self) -> int:
        return self._policies[AUTH_FAILURE_POLICY].limit

    async def remember_inactive(self, negative_key: str, ttl_seconds: int) -> None:
        """Remember auth's "not active" for a token for `ttl_seconds`, so a flood of it costs auth nothing."""
        async with asyncio.timeout(self._timeout):
            await self._redis.set(negative_key, b"1", ex=ttl_seconds)

    def _decide(
        self, policy: _Policy, count: int, reset: int, backend: str, upstream_token: str | None = None
    ) -> Decision:
        """Allowed or limited by the `count`-th request of the window, with the headers that say so."""
        remaining = max(0, policy.limit - count)
        headers: Headers = [
            (b"ratelimit-policy", policy.policy_header),
            (b"ratelimit", b'"%s";r=%d;t=%d' % (policy.name_bytes, remaining, reset)),
            (b"x-ratelimit-limit", policy.limit_bytes),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % reset),
        ]
        if count > policy.limit:
            self._metrics[(policy.name, LIMITED, backend)].inc()
            return Decision(LIMITED, headers, reset)
        self._metrics[(policy.name, ALLOWED, backend)].inc()
        return Decision(ALLOWED, headers, upstream_token=upstream_token)

    def _token_policy(self, per_minute: int) -> _Policy:
        per_minute = min(per_minute, self._token_cap)
        policy = self._token_policies.get(per_minute)
        if policy is None:
            policy = self._token_policies[per_minute] = _Policy(
                TOKEN_POLICY, RateLimitPolicy(limit=per_minute, window=self._policies[TOKEN_POLICY].window)
            )
        return policy

    async def store_token(self, cache_key: str, fields: Mapping[str, str | int | float], ttl_seconds: int) -> None:
        """Cache an active introspection for `ttl_seconds` (auth deletes the entry when it revokes)."""
        async with asyncio.timeout(self._timeout):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(cache_key)
                pipe.hset(cache_key, mapping=dict(fields))
                pipe.expire(cache_key, ttl_seconds)
                await pipe.execute()

    async def aclose(self) -> None:
        await self._batcher.aclose()
        await self._token_batcher.aclose()

    def _open_breaker(self, exc: BaseException) -> None:
        RATELIMIT_BACKEND_ERRORS.inc()
        self._skip_redis_until = time.monotonic() + self._breaker_seconds
        log.warning("ratelimit_backend_unavailable", error_type=type(exc).__name__, skip_seconds=self._breaker_seconds)
