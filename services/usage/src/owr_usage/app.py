"""The usage service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from arq.connections import ArqRedis
from fastapi import FastAPI

from owr_shared.app import create_service_app
from owr_shared.auth import jwks_verifiers
from owr_shared.db import create_service_engine
from owr_shared.jwt import JwksFetcher
from owr_shared.overload import CallerLimit, Slots
from owr_shared.settings import load_settings
from owr_usage.alerts.nudge import NUDGE_INFO, queue_nudge
from owr_usage.alerts.router import router as alerts_router
from owr_usage.anomalies.router import router as anomalies_router
from owr_usage.budgets.router import router as budgets_router
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.router import confirmations_router
from owr_usage.channels.router import router as channels_router
from owr_usage.channels.sealing import channel_envelope
from owr_usage.insights.router import router as insights_router
from owr_usage.internal.router import router as internal_router
from owr_usage.key_actions.enqueue import ENQUEUE_INFO, queue_enqueuer
from owr_usage.key_actions.router import router as key_actions_router
from owr_usage.key_usage.router import router as key_usage_router
from owr_usage.prices.router import router as prices_router
from owr_usage.reconciliation.router import router as reconciliation_router
from owr_usage.reports.router import router as reports_router
from owr_usage.reports.service import ReportLimits
from owr_usage.rules.router import router as rules_router
from owr_usage.settings import UsageSettings
from owr_usage.workspace_metrics.router import router as workspace_metrics_router


@asynccontextmanager
async def reports_capacity(app: FastAPI, settings: UsageSettings) -> AsyncIterator[None]:
    """Lifespan part: the exports' own pool, one connection per export slot (no overflow), and the limits."""
    engine = create_service_engine(settings, "usage-export", pool_size=settings.export_concurrency, max_overflow=0)
    app.state.export_engine = engine
    app.state.report_limits = ReportLimits(
        summaries=CallerLimit(settings.summary_concurrency_per_workspace),
        exports=CallerLimit(settings.export_concurrency_per_workspace),
        export_slots=Slots(settings.export_concurrency, wait=settings.db_pool_timeout),
    )
    try:
        yield
    finally:
        await engine.dispose()


def utc_now() -> datetime:
    return datetime.now(UTC)


@asynccontextmanager
async def alerting(app: FastAPI, settings: UsageSettings, clock: Callable[[], datetime]) -> AsyncIterator[None]:
    """Lifespan part: the envelope of channels' sealed values (`USAGE_KEKS`), the limit on channels' tests, the
    clock of deliveries, and the worker's queue, nudged after each commit that raised events or recorded key
    actions."""
    app.state.channel_envelope = channel_envelope(settings)
    app.state.channel_test_limit = ChannelTestLimit(
        app.state.redis,
        per_minute=settings.channel_tests_per_minute,
        per_workspace_minute=settings.workspace_channel_tests_per_minute,
        confirmations_per_day=settings.confirmations_per_day,
    )
    app.state.clock = clock
    # Connected on first use: usage starts and serves while Redis is away (the worker's poll still delivers).
    queue = ArqRedis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    queue.default_queue_name = settings.queue_name
    app.state.sessionmaker.configure(info={NUDGE_INFO: queue_nudge(queue), ENQUEUE_INFO: queue_enqueuer(queue)})
    try:
        yield
    finally:
        await queue.aclose()


def create_app(
    settings: UsageSettings | None = None,
    *,
    jwks_fetcher: JwksFetcher | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """Build the usage app; the JWKS client, the channels' envelope and the clock are set in its lifespan.

    `jwks_fetcher` replaces the HTTP fetch of auth's JWKS (tests serve a test keyring's set); `clock` the time
    of deliveries, rotations and audit rows (tests move it).
    """
    settings = settings or load_settings(UsageSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            jwks_verifiers(app, settings, jwks_fetcher),
            reports_capacity(app, settings),
            alerting(app, settings, clock),
        ):
            yield

    return create_service_app(
        service="usage",
        settings=settings,
        routers=[
            key_usage_router,
            workspace_metrics_router,
            reports_router,
            budgets_router,
            rules_router,
            channels_router,
            confirmations_router,
            alerts_router,
            insights_router,
            key_actions_router,
            anomalies_router,
            prices_router,
            reconciliation_router,
            internal_router,
        ],
        title="OpenRouter Watcher usage",
        description=(
            "Key snapshots, exact daily spend per key, account balances, key lists and activity; summaries, "
            "daily rows, exports and accounts; alert channels, their deliveries and the alert history."
        ),
        row_level_security=True,
        extra_lifespan=lifespan,
    )
