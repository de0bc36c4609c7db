"""A small real HTTP server standing in for another service (keys) in auth's tests.

It runs uvicorn in its own thread and event loop, so it answers whatever the test's loop is doing.
It records every request and answers with `status`, or holds the request open while `hang` is set
(until `reset`), which lets a test drive auth's timeouts.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from tools.devinfra import free_port


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    headers: dict[str, str]


class PeerStub:
    """Records calls; answers `status` (an empty body), or hangs while `hang` is set. A GET (the orphan
    sweep's listing) is answered 200 with `stored` as one page of workspace ids, unless `status` is 5xx."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[RecordedCall] = []
        self.status = 204
        self.hang = False
        self.stored: list[str] = []
        # Hanging requests, each waiting on an event of the server's loop.
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Back to answering 204 with no calls recorded; lets any hanging request finish."""
        with self._lock:
            self.hang = False
            waiting, self._waiting = self._waiting, []
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)
        self.calls.clear()
        self.status = 204
        self.stored = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls.append(RecordedCall(scope["method"], scope["path"], headers))
        released = asyncio.Event()
        with self._lock:
            hang = self.hang
            if hang:
                self._waiting.append((asyncio.get_running_loop(), released))
        if hang:
            await released.wait()
        if scope["method"] == "GET" and self.status < 500:
            body = json.dumps({"items": self.stored, "next_after": None}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@contextmanager
def running_peer_stub() -> Iterator[PeerStub]:
    """Serve a `PeerStub` on a free port for the duration of the block."""
    stub = PeerStub()
    config = uvicorn.Config(
        stub, host="127.0.0.1", port=stub.port, lifespan="off", log_config=None, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="peer-stub", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the peer stub did not start")
        time.sleep(0.01)
    try:
        yield stub
    finally:
        stub.reset()
        server.should_exit = True
        thread.join(timeout=5)
