"""The embedded servers `make run` and `make test` fall back to on a machine without PostgreSQL or Redis."""

from __future__ import annotations

import asyncio
from dataclasses import astuple

import asyncpg
import redis

from owr_shared.db import asyncpg_url
from tools.devinfra import create_database, drop_database, embedded_postgres, embedded_redis
from tools.devstack import Ports, ProcessSpec, worker_processes


def test_embedded_postgres_and_redis_start_serve_and_stop(tmp_path_factory):
    # pgserver keeps its socket in the data directory, whose path must stay short (Unix sockets: 107 bytes).
    with (
        embedded_postgres(tmp_path_factory.mktemp("pg")) as admin_url,
        embedded_redis(tmp_path_factory.mktemp("r")) as redis_url,
    ):
        url = create_database(admin_url, "owr_embedded_probe")

        async def probe() -> int:
            conn = await asyncpg.connect(asyncpg_url(url).replace("postgresql+asyncpg", "postgresql", 1))
            try:
                return int(await conn.fetchval("SELECT 41 + 1"))
            finally:
                await conn.close()

        assert asyncio.run(probe()) == 42
        drop_database(admin_url, "owr_embedded_probe")

        client = redis.Redis.from_url(redis_url)
        assert client.incr("probe") == 1
        client.close()
    # After the context the Redis server is gone.
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
        raise AssertionError("embedded redis still answers after stop")
    except redis.ConnectionError:
        pass


def test_a_systems_ports_are_distinct_every_time():
    """One port per process: taken one at a time, a port just closed came back for another process about once in
    150 systems (the dashboard's listener then failed while the gateway in front of it answered 503s)."""
    for _ in range(500):
        ports = astuple(Ports.free())
        assert len(set(ports)) == len(ports), ports
    workers = worker_processes(ProcessSpec("worker", "owr_worker", 8004), 3)
    assert [w.name for w in workers] == ["worker1", "worker2", "worker3"]
    assert workers[0].health_port == 8004
    assert len({w.health_port for w in workers}) == 3
    assert [w.env["WORKER_PORT"] for w in workers] == [str(w.health_port) for w in workers]
