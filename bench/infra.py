"""The benchmarks' PostgreSQL and Redis: DATABASE_URL / REDIS_URL when set, else embedded under .data/bench/."""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack

from owr_shared.migrate import upgrade
from tools.devinfra import DATA_DIR, create_database, drop_database, embedded_postgres, embedded_redis


def bench_database(stack: ExitStack) -> tuple[str, str]:
    """A fresh database with every migration applied (dropped when `stack` closes), and the Redis URL."""
    admin_url = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres(DATA_DIR / "bench" / "pg"))
    redis_url = os.environ.get("REDIS_URL") or stack.enter_context(embedded_redis(DATA_DIR / "bench" / "redis"))
    database = f"owr_bench_{secrets.token_hex(3)}"
    database_url = create_database(admin_url, database)
    stack.callback(drop_database, admin_url, database)
    upgrade(database_url=database_url)
    return database_url, redis_url
