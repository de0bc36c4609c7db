"""What the gateway owns at run time: Redis, one HTTP client per upstream, the verifier, the limiter.

Everything is created in the ASGI lifespan (never at import) and closed at shutdown.
"""

from __future__ import annotations

import asyncio

import aiohttp
from redis.asyncio import Redis

from owr_gateway.auth import Authenticator, aiohttp_jwks_fetcher
from owr_gateway.pipeline.forward import FreshConnector
from owr_gateway.ratelimit import RateLimiter
from owr_gateway.settings import GatewaySettings
from owr_gateway.tokens import TokenIntrospector
from owr_shared.health import HealthChecks
from owr_shared.jwt import JwksVerifier
from owr_shared.redis import create_redis

READY_TIMEOUT = 1.0
# aiohttp adds these unless told not to; a proxy forwards only what the client sent.
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def new_upstream_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """A keep-alive client for one upstream: no cookies kept, no redirects followed, no decoding."""
    connector = FreshConnector(
        limit=settings.upstream_pool_size,
        limit_per_host=0,
        keepalive_timeout=15.0,  # below uvicorn's 30 s on the upstream side: we close first
        ttl_dns_cache=10,
    )
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.upstream_connect_timeout,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_read_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        # A shared jar would hand one user's Set-Cookie to the next user's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_SKIP_AUTO_HEADERS,
        trust_env=False,
        raise_for_status=False,
    )


class GatewayState:
    """Run-time resources shared by the main and the admin app."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.redis: Redis | None = None
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.limiter: RateLimiter | None = None
        self.authenticator: Authenticator | None = None
        self.introspector: TokenIntrospector | None = None
        self.health = HealthChecks(timeout=READY_TIMEOUT)
        # Both are shared by every replica, and the gateway serves without them (local limits, cached JWKS):
        # reported, but never a reason to leave the load balancer (owr_shared.health).
        self.health.add("redis", self._ping_redis, degrades=True)
        self.health.add("auth", self._ping_auth, degrades=True)
        self.started = False

    async def start(self) -> None:
        settings = self.settings
        self.health.shutting_down = False
        self.redis = create_redis(settings.redis_url, timeout=settings.redis_timeout, max_connections=1024)
        self.sessions = {name: new_upstream_session(settings) for name in settings.upstreams}
        verifier = JwksVerifier(
            aiohttp_jwks_fetcher(self.sessions["auth"], settings.jwks_url),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        self.authenticator = Authenticator(verifier, settings.jwt_cache_size)
        if settings.service_client_secret is not None:
            self.introspector = TokenIntrospector(
                self.sessions["auth"],
                settings.auth_url,
                pepper=settings.api_token_pepper_bytes,
                client_id=settings.service_client_id,
                secret=settings.service_client_secret.get_secret_value(),
                timeout=settings.introspection_timeout,
            )
        self.limiter = RateLimiter(
            self.redis,
            {str(name): policy for name, policy in settings.rate_limits.items()},
            timeout=settings.redis_timeout,
            breaker_seconds=settings.redis_breaker_seconds,
        )
        self.started = True

    async def stop(self) -> None:
        self.health.shutting_down = True
        self.started = False
        if self.limiter is not None:
            await self.limiter.aclose()
            self.limiter = None
        sessions, self.sessions = self.sessions, {}
        await asyncio.gather(*(session.close() for session in sessions.values()), return_exceptions=True)
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    async def _ping_redis(self) -> None:
        if self.redis is None:
            raise RuntimeError("not started")
        await self.redis.ping()

    async def _ping_auth(self) -> None:
        session = self.sessions.get("auth")
        if session is None:
            raise RuntimeError("not started")
        url = f"{self.settings.auth_url}/health/live"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=READY_TIMEOUT)) as response:
            if response.status != 200:
                raise RuntimeError(f"auth answered {response.status}")
            await response.read()

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        return await self.health.run()
