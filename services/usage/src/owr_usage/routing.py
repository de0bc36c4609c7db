"""A route class whose JSON bodies keep every digit of their numbers.

FastAPI parses bodies with `json.loads`, turning `0.12345678901234567890` into a float (17 digits at
most) before pydantic sees it. The internal API receives money from OpenRouter as exact decimals, so
its routes parse floats as `Decimal` instead; a pydantic `Decimal` field then keeps the digits sent.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from owr_shared.wire import codec


class ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # NaN and Infinity are refused as a JSONDecodeError: a malformed body (400).
            self._json = codec.loads(await self.body())
        return self._json


class ExactJsonRoute(APIRoute):
    """Use as `APIRouter(route_class=ExactJsonRoute)`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            return await handler(ExactJsonRequest(request.scope, request.receive))

        return exact_handler
