"""Step 3, admit: who is calling (a session JWT, an API token or nobody) and whether their budget allows it.

The outcome is the rate limiter's decision, whose headers go on the answer either way; anything but
"allowed" becomes a refusal. Every failed authentication counts against the client's address (IPv6 by
/64) under the "auth_failure" policy: past its limit the answer is 429 instead of 401, and an API token
the cache does not know is no longer sent to auth. Auth's "not active" is remembered briefly, so the
same invalid token costs auth one introspection, not one per request.
"""

from __future__ import annotations

from owr_gateway.clientip import rate_subject
from owr_gateway.pipeline.incoming import Incoming
from owr_gateway.pipeline.problems import WWW_AUTHENTICATE_INVALID, WWW_AUTHENTICATE_MISSING, Refusal, retry_after
from owr_gateway.ratelimit import (
    ALLOWED,
    AUTH_FAILURE_POLICY,
    LIMITED,
    MISS,
    REVOKED,
    UNAVAILABLE,
    Decision,
    RateLimiter,
)
from owr_gateway.routing import Route
from owr_gateway.state import GatewayState
from owr_gateway.tokens import NEGATIVE_PREFIX, IntrospectionUnavailable, is_api_token
from owr_shared.context import new_traceparent
from owr_shared.errors import INVALID_TOKEN, RATE_LIMITED, SERVICE_UNAVAILABLE
from owr_shared.jwt import InvalidToken
from owr_shared.logging import get_logger

log = get_logger("owr.http")

INVALID = "invalid"
_BEARER = b"bearer "


class Admission:
    """Authenticate the caller a route requires, then count the request against its policy."""

    def __init__(self, state: GatewayState) -> None:
        self._state = state  # its limiter and authenticator exist between startup and shutdown

    async def admit(self, route: Route, incoming: Incoming, client_ip: str) -> Decision:
        limiter = self._state.limiter
        authenticator = self._state.authenticator
        if limiter is None or authenticator is None:
            raise Refusal(SERVICE_UNAVAILABLE, "The gateway is starting.", (retry_after(1),))
        authorization = incoming.authorization
        api_token = _api_token(authorization) if route.requires_jwt else None
        if api_token is not None:
            decision = await self._admit_api_token(api_token, limiter, incoming, client_ip)
        elif route.requires_jwt:
            try:
                principal = await authenticator.authenticate(authorization)
            except InvalidToken as exc:
                bearer = authorization is not None and authorization[:7].lower() == _BEARER
                www = WWW_AUTHENTICATE_INVALID if bearer else WWW_AUTHENTICATE_MISSING
                if authorization is not None:  # credentials were presented and failed: count them
                    failure = await _count_failure(limiter, client_ip)
                    if failure.outcome != INVALID:
                        raise refusal_of(failure) from None
                raise Refusal(exc.problem, exc.detail, (www,)) from None
            subject = principal.subject if route.policy == "user" else rate_subject(client_ip)
            decision = await limiter.check(
                route.policy,
                subject,
                user_id=principal.subject,
                issued_at=principal.issued_at,
                session_id=principal.session_id,
                workspace_id=principal.workspace_id,
            )
        else:
            decision = await limiter.check(route.policy, rate_subject(client_ip))
        if decision.outcome != ALLOWED:
            raise refusal_of(decision)
        return decision

    async def admit_anonymous(self, client_ip: str) -> Decision:
        """The "anonymous" policy's decision for a request the gateway answers itself (its docs)."""
        limiter = self._state.limiter
        if limiter is None:
            raise Refusal(SERVICE_UNAVAILABLE, "The gateway is starting.", (retry_after(1),))
        decision = await limiter.check("anonymous", rate_subject(client_ip))
        if decision.outcome != ALLOWED:
            raise refusal_of(decision)
        return decision

    async def _admit_api_token(
        self, token: bytes, limiter: RateLimiter, incoming: Incoming, client_ip: str
    ) -> Decision:
        """The rate-limit decision for an API token, introspecting it at auth when it is not cached.

        One Redis round trip when cached (the usual case); on a miss, one more to see whether the token
        is known not to be active or the client has failed too often, then one call to auth, the answer
        cached for as long as auth allows (at most 60 s) and the first round trip again.
        """
        introspector = self._state.introspector
        if introspector is None:
            return await _count_failure(limiter, client_ip)  # no credentials for auth: API tokens are refused
        cache_key = introspector.cache_key(token)
        decision = await limiter.check_token(cache_key)
        if decision.outcome != MISS:
            return decision
        negative_key = NEGATIVE_PREFIX + cache_key
        try:
            known_inactive, failures = await limiter.token_miss(negative_key, rate_subject(client_ip))
        except Exception as exc:  # Redis trouble: API tokens fail closed
            log.warning("token_miss_check_failed", error_type=type(exc).__name__)
            return Decision(UNAVAILABLE, [], 1)
        if known_inactive or failures >= limiter.failure_limit():
            return await _count_failure(limiter, client_ip)
        headers = {"x-request-id": incoming.request_id, "traceparent": new_traceparent(incoming.trace_id)}
        try:
            grant = await introspector.introspect(token, headers)
        except IntrospectionUnavailable:
            return Decision(UNAVAILABLE, [], 1)
        if grant is None:
            try:
                await limiter.remember_inactive(negative_key, self._state.settings.negative_token_cache_seconds)
            except Exception as exc:  # the next request asks auth again; the failure still counts
                log.warning("token_negative_cache_store_failed", error_type=type(exc).__name__)
            return await _count_failure(limiter, client_ip)
        try:
            # At least a second, so even a token in its last moments is counted like any other.
            await limiter.store_token(cache_key, grant.cache_fields(), max(1, grant.cache_seconds))
        except Exception as exc:  # Redis trouble: the check below says unavailable
            log.warning("token_cache_store_failed", error_type=type(exc).__name__)
        decision = await limiter.check_token(cache_key)
        if decision.outcome == MISS:  # evicted already, or Redis lost it: let the client retry
            return Decision(UNAVAILABLE, [], 1)
        return decision


async def _count_failure(limiter: RateLimiter, client_ip: str) -> Decision:
    """Count one failed authentication of the client: INVALID (401), or the limiter's 429 past the limit."""
    decision = await limiter.check(AUTH_FAILURE_POLICY, rate_subject(client_ip))
    if decision.outcome == LIMITED:
        return decision
    return Decision(INVALID, [])


def refusal_of(decision: Decision) -> Refusal:
    """The answer to a decision other than "allowed"."""
    outcome = decision.outcome
    if outcome == INVALID:
        return Refusal(INVALID_TOKEN, "The API token is unknown, revoked or expired.", (WWW_AUTHENTICATE_INVALID,))
    if outcome == REVOKED:
        return Refusal(INVALID_TOKEN, "The token has been revoked.", (WWW_AUTHENTICATE_INVALID,))
    headers = [retry_after(decision.retry_after), *decision.headers]
    if outcome == LIMITED:
        return Refusal(RATE_LIMITED, "The rate limit is exhausted.", headers)
    if outcome == UNAVAILABLE:
        return Refusal(SERVICE_UNAVAILABLE, "The service is temporarily unavailable.", headers)
    raise AssertionError(f"no answer for the decision {outcome!r}")


def _api_token(authorization: bytes | None) -> bytes | None:
    """The `owr_…` token of a `Bearer` header, else None (a JWT, another scheme, or nothing)."""
    if authorization is None or authorization[:7].lower() != _BEARER:
        return None
    token = authorization[7:].strip()
    return token if is_api_token(token) else None
