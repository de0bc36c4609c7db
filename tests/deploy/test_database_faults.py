"""PostgreSQL frozen (SIGSTOP: no answer at all) or stopped: every service answers a fast 503 with
`Retry-After`, never a hang or a 500, and recovers without a restart once the server is back.

The services run in this process behind real uvicorn servers, on a PostgreSQL of this module's own
(pgserver) that the tests may freeze and stop; recovery times are printed.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from owr_auth.app import create_app as create_auth_app
from owr_keys.app import create_app as create_keys_app
from owr_shared.migrate import upgrade
from owr_usage.app import create_app as create_usage_app
from tests.auth.conftest import make_settings as auth_settings
from tests.keys.conftest import ALL_SCOPES as KEYS_SCOPES
from tests.keys.conftest import make_settings as keys_settings
from tests.support.apps import served
from tests.support.tokens import TestKeyring
from tests.usage.conftest import ALL_SCOPES as USAGE_SCOPES
from tests.usage.conftest import make_settings as usage_settings

BOUND_SECONDS = 4.0  # connect + checkout ping at 1 s each, with room for a busy CI machine


@dataclass
class PrivatePostgres:
    server: Any  # pgserver.PostgresServer
    url: str

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.server.get_pid())
        return [postmaster, *postmaster.children(recursive=True)]

    def signal_all(self, signum: signal.Signals) -> None:
        for process in self.processes():
            process.send_signal(signum)

    def stop(self) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    import pgserver

    server = pgserver.get_server(str(Path(tmp_path_factory.mktemp("frozen-pg")) / "pg"), cleanup_mode="stop")
    try:
        url = str(server.get_uri())
        upgrade(database_url=url)
        yield PrivatePostgres(server, url)
    finally:
        for process in PrivatePostgres(server, "").processes():
            process.send_signal(signal.SIGCONT)
        server.cleanup()


@dataclass
class Probe:
    name: str
    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    healthy: int = 200


@pytest.fixture
async def probes(private_postgres: PrivatePostgres, redis_url: str) -> AsyncIterator[list[Probe]]:
    """A read of keys and usage with a valid token, and a login at auth, each on its own served app."""
    keys_ring = TestKeyring(service_audience="owr-keys", default_scopes=KEYS_SCOPES)
    usage_ring = TestKeyring(service_audience="owr-usage", default_scopes=USAGE_SCOPES)
    user, workspace = str(uuid.uuid4()), str(uuid.uuid4())
    url = private_postgres.url
    async with AsyncExitStack() as stack:
        auth = await stack.enter_async_context(served(create_auth_app(auth_settings(url, redis_url))))
        keys = await stack.enter_async_context(
            served(create_keys_app(keys_settings(url, redis_url), jwks_fetcher=keys_ring.fetch))
        )
        usage = await stack.enter_async_context(
            served(create_usage_app(usage_settings(url, redis_url), jwks_fetcher=usage_ring.fetch))
        )
        yield [
            Probe(
                "auth login",
                "POST",
                f"http://127.0.0.1:{auth}/api/v1/auth/login",
                {},
                {"email": "nobody@example.com", "password": "not the password"},
                healthy=401,
            ),
            Probe(
                "keys list",
                "GET",
                f"http://127.0.0.1:{keys}/api/v1/keys",
                {"Authorization": f"Bearer {keys_ring.access_token(user, workspace)}"},
            ),
            Probe(
                "usage summary",
                "GET",
                f"http://127.0.0.1:{usage}/api/v1/usage/summary",
                {"Authorization": f"Bearer {usage_ring.access_token(user, workspace)}"},
            ),
        ]


async def _call(client: httpx.AsyncClient, probe: Probe) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.request(probe.method, probe.url, headers=probe.headers, json=probe.json)
    return response, time.monotonic() - started


async def _unavailable_then_recovered(probes: list[Probe], fault: str, down: Any, up: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for probe in probes:  # pooled connections exist, as on a running system
            assert (await _call(client, probe))[0].status_code == probe.healthy
        down()
        try:
            for probe in probes:
                response, took = await _call(client, probe)
                assert response.status_code == 503, (probe.name, response.status_code, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["type"].endswith("/database-unavailable"), response.text
                assert int(response.headers["Retry-After"]) >= 1
                assert took < BOUND_SECONDS, f"{probe.name} took {took:.1f} s to answer with {fault}"
                print(f"{fault}: {probe.name} answered 503 in {took:.2f} s")
        finally:
            up()
        back = time.monotonic()
        for probe in probes:
            deadline = time.monotonic() + 20
            while (status := (await _call(client, probe))[0].status_code) != probe.healthy:
                assert time.monotonic() < deadline, f"{probe.name} still answers {status} after {fault}"
            print(f"after {fault}: {probe.name} recovered {time.monotonic() - back:.2f} s after the server was back")


async def test_a_frozen_database_is_a_fast_503_and_recovers(
    probes: list[Probe], private_postgres: PrivatePostgres
) -> None:
    await _unavailable_then_recovered(
        probes,
        "PostgreSQL frozen",
        lambda: private_postgres.signal_all(signal.SIGSTOP),
        lambda: private_postgres.signal_all(signal.SIGCONT),
    )


async def test_a_stopped_database_is_a_fast_503_and_recovers(
    probes: list[Probe], private_postgres: PrivatePostgres
) -> None:
    await _unavailable_then_recovered(probes, "PostgreSQL stopped", private_postgres.stop, private_postgres.start)
