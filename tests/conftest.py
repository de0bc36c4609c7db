"""Session-wide real infrastructure: a fresh, migrated PostgreSQL database and a Redis database.

`DATABASE_URL` / `REDIS_URL` are used when set; otherwise embedded servers start under `.data/test/`.
Each test session gets its own database (dropped at the end), so runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from owr_shared.db import create_engine
from tests.support.db import migrated_database
from tools.devinfra import DATA_DIR, embedded_postgres, embedded_redis

# The test kit's fixtures (tests/README.md): the service suites' clients and the keys and usage tenants.
pytest_plugins = ["tests.support.clients", "tests.support.tenants"]

os.environ.setdefault("OWR_ENV", "test")
os.environ.setdefault("LOG_JSON", "true")
# The suites send many confirmation emails to the same few addresses in a day; the limit has a test of its own.
os.environ.setdefault("USAGE_CONFIRMATIONS_PER_DAY", "100000")


@pytest.fixture(scope="session")
def infra() -> Iterator[dict[str, str]]:
    """Admin URLs of the PostgreSQL and Redis servers the tests use."""
    with ExitStack() as stack:
        pg = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(DATA_DIR / "test" / "pg"))
        redis = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis(DATA_DIR / "test" / "redis"))
        yield {"database_url": pg, "redis_url": redis}


@pytest.fixture(scope="session")
def database_url(infra: dict[str, str]) -> Iterator[str]:
    """A fresh database for this session with every service's migrations applied (libpq URL)."""
    with migrated_database(infra["database_url"]) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(infra: dict[str, str]) -> str:
    """Redis for tests: a database (1-15) of the given server picked per session, so two runs sharing a
    server rarely meet; `redis_client` flushes it before each test."""
    base = infra["redis_url"].rsplit("/", 1)[0] if infra["redis_url"].count("/") > 2 else infra["redis_url"]
    return f"{base}/{secrets.randbelow(15) + 1}"


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5, application_name="owr-tests")
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(db_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with db_engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test, whatever the code commits."""
    session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    await session.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
