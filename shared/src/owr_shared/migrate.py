"""Alembic for every service: one env implementation, each service's version table in its own schema.

`python -m owr_shared.migrate [auth keys usage]` upgrades each named service (all by default) to
head against `DATABASE_URL`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from owr_shared.db import asyncpg_url
from owr_shared.wall import span_migrations

SERVICES_WITH_SCHEMA = ("auth", "keys", "usage")


def alembic_config(service: str, database_url: str | None = None) -> Config:
    """Alembic config for `owr_<service>`'s migrations package."""
    script_location = str(resources.files(f"owr_{service}") / "migrations")
    config = Config()
    config.set_main_option("script_location", script_location)
    url = database_url or os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    config.attributes["database_url"] = url
    return config


def run_env(*, schema: str, target_metadata: MetaData) -> None:
    """Body of every service's `env.py`: online migrations, filtered to that service's schema."""
    config = context.config
    # Programmatic runs pass the URL explicitly; the alembic CLI takes DATABASE_URL, then the ini file.
    raw_url = (
        config.attributes.get("database_url")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or ""
    )
    url = asyncpg_url(raw_url)

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def do_run(connection: Connection) -> None:
        # Only when missing: CREATE SCHEMA (even IF NOT EXISTS) needs CREATE on the database, which a
        # service role that merely owns its schema (deploy/compose/postgres-init) must not have.
        found = connection.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema})
        if found.scalar() is None:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        span_migrations(connection)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(do_run)
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        raise SystemExit("offline migrations are not supported; run against a database")
    asyncio.run(run())


def upgrade(services: tuple[str, ...] = SERVICES_WITH_SCHEMA, database_url: str | None = None) -> None:
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")


def main(argv: list[str]) -> int:
    services = tuple(argv) or SERVICES_WITH_SCHEMA
    unknown = [s for s in services if s not in SERVICES_WITH_SCHEMA]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    upgrade(services)
    print(f"migrated: {', '.join(services)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
