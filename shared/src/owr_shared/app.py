"""One way to build every FastAPI service: same lifespan, middleware, errors and health (metrics: admin.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from fastapi import APIRouter, FastAPI

from owr_shared.db import create_service_engine, create_sessionmaker, ping_database
from owr_shared.errors import install_problem_handlers
from owr_shared.health import HealthChecks, health_router
from owr_shared.middleware import RequestContextMiddleware
from owr_shared.overload import install_overload_handlers
from owr_shared.redis import create_redis, ping_redis
from owr_shared.settings import BaseServiceSettings

ExtraLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    service: str,
    settings: BaseServiceSettings,
    routers: Sequence[APIRouter],
    title: str,
    version: str = "0.1.0",
    description: str = "",
    use_database: bool = True,
    use_redis: bool = True,
    row_level_security: bool = False,
    extra_lifespan: ExtraLifespan | None = None,
) -> FastAPI:
    """Create a service app whose engines and clients live in its lifespan, never at import.
    `row_level_security`: its schema's tables have policies, so its sessions go behind `owr_shared.wall`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        health = HealthChecks(timeout=1.0)
        app.state.settings = settings
        app.state.health = health
        engine = redis = None
        if use_database:
            engine = create_service_engine(settings, service)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine, walled=row_level_security)
            health.add("postgres", partial(ping_database, engine))
        if use_redis:
            redis = create_redis(settings.redis_url)
            app.state.redis = redis
            # Every replica shares Redis, and each route that needs it answers a fast 503 (or falls back) itself.
            health.add("redis", partial(ping_redis, redis), degrades=True)
        try:
            if extra_lifespan is not None:
                async with extra_lifespan(app):
                    yield
            else:
                yield
        finally:
            health.shutting_down = True
            if redis is not None:
                await redis.aclose()
            if engine is not None:
                await engine.dispose()

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    install_overload_handlers(app, service)
    app.include_router(health_router())
    # `/metrics` is served on the admin port only (owr_shared.admin), never next to `/api/v1` and `/internal`.
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, service=service)
    return app
