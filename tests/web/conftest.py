"""Web's pages in-process against a scripted gateway: the real app (lifespan, sessions on the real Redis, templates,
CSRF) calling a real HTTP server that answers what each test sets and records every call.

What is under test is web: the request it makes of the API, and the page it renders from the answer. The browser
journey (tests/e2e/test_web_journey.py) runs the same pages against the real system.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from owr_shared.wire import codec
from owr_web.api.client import Api
from owr_web.app import create_app
from owr_web.settings import WebSettings
from tests.support.apps import running, served

WORKSPACE_ID = "9f0e8d7c-5555-4b6a-9c8d-7e6f5a4b3c01"


def pair(role: str, **extra: Any) -> dict[str, Any]:
    """A token pair whose access token carries `role` and any `extra` claims (web reads its claims for what to
    show; the gateway here is scripted, so nothing verifies the signature)."""
    body = json.dumps({"wid": WORKSPACE_ID, "role": role, **extra}).encode()
    claims = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return {"access_token": f"e30.{claims}.c2ln", "refresh_token": "r0", "token_type": "bearer", "expires_in": 900}


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: Any


@dataclass
class Gateway:
    """Answers `(method, path)` with what a test set (`answer`), else 404; `calls` holds every request."""

    answers: dict[tuple[str, str], tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def answer(self, method: str, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        self.answers[(method, path)] = (status, body, headers)

    def page(self, path: str, items: list[dict[str, Any]], total: int | None = None) -> None:
        self.answer(
            "GET", path, {"items": items, "total": len(items) if total is None else total, "page": 1, "per_page": 50}
        )

    def sent(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        body = codec.loads(raw) if raw else None
        self.calls.append(Call(request.method, request.url.path, dict(request.query_params), body))
        status, answer, headers = self.answers.get(
            (request.method, request.url.path), (404, {"title": "Not Found", "status": 404}, {})
        )
        if status == 204:
            return Response(status_code=204)
        content_type = "application/json" if status < 400 else "application/problem+json"
        return Response(codec.dumps(answer), status_code=status, media_type=content_type, headers=headers)


@dataclass
class Browser:
    """A signed-in person's client of web, with the session's CSRF token for forms."""

    client: httpx.AsyncClient
    gateway: Gateway
    app: FastAPI
    csrf: str = ""

    async def sign_in(self, role: str, **claims: Any) -> None:
        """A new session acting in the workspace with `role` (an owner's by default), its token carrying `claims`."""
        sessions = self.app.state.sessions
        session_id = await sessions.start(
            pair(role, **claims), "pat@example.com", Api(self.app.state.http, client_ip="127.0.0.1")
        )
        self.client.cookies.set("owr_session", session_id)
        self.csrf = (await sessions.load(session_id)).csrf_token
        self.gateway.calls.clear()

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params or None)

    async def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True) -> httpx.Response:
        form = {**(data or {}), **({"csrf_token": self.csrf} if csrf else {})}
        return await self.client.post(path, data=form)


@pytest.fixture
async def web(redis_url: str, redis_client: Any) -> AsyncIterator[Browser]:
    """Web in-process, signed in, its gateway a scripted server on a loopback port."""
    gateway = Gateway()
    api = FastAPI()
    api.add_api_route("/{path:path}", gateway.handle, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async with served(api) as port:
        settings = WebSettings.model_validate(
            {"OWR_ENV": "test", "REDIS_URL": redis_url, "gateway_url": f"http://127.0.0.1:{port}"}
        )
        app = create_app(settings)
        async with running(app) as client:
            browser = Browser(client, gateway, app)
            await browser.sign_in("owner")
            yield browser


def text(html: str) -> str:
    """A page's words, tags dropped and spaces squeezed, for asserting what a person reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
