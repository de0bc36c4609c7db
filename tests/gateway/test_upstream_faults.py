"""Finding 18: one upstream 500 must not become a second failure on the next request.

A real `owr_shared` service (uvicorn, as `python -m` runs it) answers 500 and then an ordinary request
through a real gateway; and a raw upstream closes a pooled connection the gateway has not noticed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import uvicorn
from fastapi import APIRouter, Request

from owr_gateway.pipeline.forward import FreshConnector
from owr_shared.app import create_service_app
from owr_shared.serve import uvicorn_config
from owr_shared.settings import BaseServiceSettings
from tests.gateway.conftest import GatewayFactory, SigningKey, bearer, metric


@contextlib.asynccontextmanager
async def failing_service() -> AsyncIterator[str]:
    """A service built like every other, one route of which fails unexpectedly; its base URL."""
    router = APIRouter(prefix="/api/v1/keys")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @router.post("/peer")
    async def peer(request: Request) -> dict[str, Any]:
        assert request.client is not None
        return {"port": request.client.port}

    app = create_service_app(
        service="faulty",
        settings=BaseServiceSettings(OWR_ENV="test"),
        routers=[router],
        title="faulty",
        use_database=False,
        use_redis=False,
    )
    config = uvicorn_config(app, host="127.0.0.1", port=0)
    config.loop = "asyncio"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the service did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def test_a_500_keeps_the_upstream_connection_for_the_next_request(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    signing_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
):
    async with failing_service() as service_url:
        gw = await make_gateway(keys_url=service_url)
        token = bearer(signing_key.token())
        async with client.post(gw.url + "/api/v1/keys/peer", headers=token) as response:
            assert response.status == 200
            first_port = (await response.json())["port"]
        with caplog.at_level(logging.ERROR):
            async with client.get(gw.url + "/api/v1/keys/boom", headers=token) as response:
                assert response.status == 500
                assert response.content_type == "application/problem+json"
            await asyncio.sleep(0.2)  # what the server does after answering, it has done by now
            async with client.post(gw.url + "/api/v1/keys/peer", headers=token) as response:
                assert response.status == 200
                second_port = (await response.json())["port"]
    # The handled error was never re-raised into the server (which would log it a second time) ...
    assert "Exception in ASGI application" not in caplog.text
    # ... which therefore kept the keep-alive connection: the next request came over the same one.
    assert second_port == first_port


class ClosingUpstream:
    """A raw HTTP/1.1 upstream in its own thread: it answers one request per connection with
    keep-alive, then, when told, closes that connection while the client believes it idle."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.close_now = threading.Event()
        self.closed = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.listener.accept()
                with connection:
                    self._answer(connection)
                    if self.requests == 1:
                        self.close_now.wait(10)
                        connection.shutdown(socket.SHUT_RDWR)
                        self.closed.set()
                        continue
                    # Later connections are closed by the client.
                    with contextlib.suppress(OSError):
                        while connection.recv(65536):
                            pass

    def _answer(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(body) < length:
            body += connection.recv(65536)
        self.requests += 1
        answer = b"answer %d" % self.requests
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (len(answer), answer)
        )

    def stop(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_pooled_connection_closed_by_the_upstream_is_replaced_before_sending(method: str):
    upstream = ClosingUpstream()
    url = f"http://127.0.0.1:{upstream.port}/api/v1/keys"
    before = metric("owr_gateway_upstream_stale_connections_total")
    try:
        async with aiohttp.ClientSession(connector=FreshConnector()) as session:
            async with session.request(method, url, data=b"first") as response:
                assert await response.read() == b"answer 1"  # its connection goes back to the pool
            upstream.close_now.set()
            assert upstream.closed.wait(5)
            # Blocking on purpose: the FIN is in the socket but this loop has not read it, exactly as
            # when the upstream closes just as the gateway picks the connection from its pool.
            time.sleep(0.1)  # noqa: ASYNC251
            async with session.request(method, url, data=b"second") as response:
                assert response.status == 200
                assert await response.read() == b"answer 2"
    finally:
        upstream.stop()
    assert upstream.requests == 2  # each request reached the upstream exactly once
    assert metric("owr_gateway_upstream_stale_connections_total") == before + 1
