"""What the handlers share: the emulator's state, faults and stats, and the JSON/error helpers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tools.emulator.faults import Faults, Stats
from tools.emulator.state import EmulatorState
from tools.emulator.wire import dumps, loads


@dataclass
class Emulator:
    """One emulator instance: its world, the active faults, request counts, and a stop signal for hangs."""

    state: EmulatorState = field(default_factory=EmulatorState)
    faults: Faults | None = None
    stats: Stats = field(default_factory=Stats.empty)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """`POST /_admin/reset`: empty world, real time, no faults, zero counts."""
        self.state.reset()
        self.faults = None
        self.stats = Stats.empty()


EMULATOR = web.AppKey("emulator", Emulator)


class ApiError(Exception):
    """An error answer in OpenRouter's shape, `{"error": {"code", "message", "metadata"?}}`.

    `message_first` reproduces the live 401 body, which puts `message` before `code`.
    """

    def __init__(
        self, status: int, message: str, *, metadata: dict[str, Any] | None = None, message_first: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata
        self.message_first = message_first

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = (
            {"message": self.message, "code": self.status}
            if self.message_first
            else {"code": self.status, "message": self.message}
        )
        if self.metadata is not None:
            error["metadata"] = self.metadata
        return {"error": error}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer whose money is exact decimal text."""
    return web.Response(text=dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: ApiError) -> web.Response:
    return json_response(error.body(), status=error.status)


async def read_json(request: web.Request) -> Any:
    """The request body parsed with Decimal floats; 400 when it is not JSON."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        return loads(text)
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None


def emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR]
