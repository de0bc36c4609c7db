"""Async SQLAlchemy: engines built in the lifespan, one session per request, one transaction boundary."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Uuid, func, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from owr_shared.db_faults import bound_checkout_ping
from owr_shared.settings import BaseServiceSettings
from owr_shared.wall import WalledSession, WallSource, declared, guard


def asyncpg_url(url: str) -> str:
    """Turn a plain libpq URL (`postgresql://user@host/db?sslmode=...`) into SQLAlchemy's asyncpg form."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        # asyncpg names libpq's sslmode "ssl"; other libpq-only options are dropped.
        if key == "sslmode":
            query.append(("ssl", value))
        elif key in ("host", "port", "ssl", "application_name", "options"):
            query.append((key, value))
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), ""))


def create_engine(
    database_url: str,
    *,
    pool_size: int = 10,
    max_overflow: int | None = None,
    application_name: str = "owr",
    pool_timeout: float = 30.0,
    statement_timeout: float = 0,
    idle_in_transaction_timeout: float = 0,
    connect_timeout: float = 1.0,
) -> AsyncEngine:
    """Create an engine; call from the lifespan, never at import. `max_overflow` defaults to `pool_size`;
    the two server-side timeouts are in seconds (0: the server's own setting). Every wait on the server
    is bounded on this side too (`owr_shared.db_faults`)."""
    server_settings = {"application_name": application_name}
    for name, seconds in (
        ("statement_timeout", statement_timeout),
        ("idle_in_transaction_session_timeout", idle_in_transaction_timeout),
    ):
        if seconds:
            server_settings[name] = str(max(1, round(seconds * 1000)))  # milliseconds
    # A frozen server enforces no statement_timeout: the client gives up one second after it would have.
    command_timeout = statement_timeout + 1 if statement_timeout else None
    engine = create_async_engine(
        asyncpg_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        # Error messages would otherwise carry statement parameters (hashes, ciphertexts) into logs.
        hide_parameters=True,
        connect_args={
            "server_settings": server_settings,
            "timeout": connect_timeout,
            "command_timeout": command_timeout,
        },
    )
    bound_checkout_ping(engine, connect_timeout)
    return engine


def create_service_engine(
    settings: BaseServiceSettings,
    application_name: str,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> AsyncEngine:
    """A service's engine with its settings' pool size, pool timeout and statement and idle timeouts.
    A second pool of the service (usage's exports) passes its own `pool_size` and `max_overflow`."""
    return create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size if pool_size is None else pool_size,
        max_overflow=max_overflow,
        application_name=application_name,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
        idle_in_transaction_timeout=settings.db_idle_in_transaction_timeout,
        connect_timeout=settings.db_connect_timeout,
    )


def create_sessionmaker(engine: AsyncEngine, *, walled: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions of `engine`; `walled` ones start each transaction behind their wall (`owr_shared.wall`), as
    the sessions of a service whose tables have row-level security must."""
    session_class = WalledSession if walled else Session
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, sync_session_class=session_class)


class Base(DeclarativeBase):
    """Declarative base; each service's `base.py` subclasses it with `schema_metadata(<its schema>)`."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the Python-side default of every timestamp column."""
    return datetime.now(UTC)


class WorkspaceTombstoneColumns:
    """A workspace this service has erased, kept so that no late write re-creates its rows
    (`owr_shared.repository.tombstone_workspace` and `erased_among`)."""

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


# Deterministic constraint names, so Alembic revisions can drop and rename them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    """Metadata for one service's schema, with the shared constraint naming convention."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


async def ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "owr_after_commit"


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once this session's transaction has committed (never when it rolls back): for side
    effects other readers must not see before the rows do, such as dropping a cache entry."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def _commit(session: AsyncSession) -> None:
    """Commit, then run the callbacks registered for this transaction, in order."""
    callbacks: list[AfterCommit] = session.info.pop(_AFTER_COMMIT, [])
    await session.commit()
    for callback in callbacks:
        await callback()


async def _rollback(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    await session.rollback()


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession], wall: WallSource | None = None
) -> AsyncIterator[AsyncSession]:
    """The one transaction boundary: commit on exit (then the `after_commit` callbacks), roll back when it
    raises. A request's `DbSession` is one; work outside a request (a command's batch) takes one per unit,
    passing `wall.SPANS` when it works across workspaces (a walled session's default is `wall.DENY`)."""
    async with sessionmaker() as session:
        if wall is not None:
            guard(session, wall)
        try:
            yield session
        except BaseException:
            await _rollback(session)
            raise
        else:
            await _commit(session)


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint returns, roll back when it raises; behind the wall of the request's caller."""
    async with transaction(request.app.state.sessionmaker, partial(declared, request)) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is a 500
# problem rather than a 2xx that lied.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
