"""Worker test doubles: a tiny real aiohttp server per test standing in for OpenRouter (bodies from
CONTRACT.md) or for the internal APIs of auth, keys and usage; plus a ctx built like the worker's.

Real processes of keys, usage, auth and the OpenRouter emulator are the e2e tests' business.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import pytest
from aiohttp import web
from arq.connections import ArqRedis

from owr_shared.wire import codec
from owr_shared.wire.alerts import ClaimedDelivery
from owr_worker.settings import WorkerSettings
from owr_worker.worker import build_clients, close_clients
from tests.support.mail import Inbox, smtp_server
from tests.support.openrouter import key_list_row

KEY = "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"
MGMT_KEY = "sk-or-v1-mgmt5f1dad2ad7e88c4c1d6b77688157716fb1a5271146f7464951c96aaaa"
DATE_HEADER = "Sun, 23 Aug 2026 10:15:30 GMT"
QUEUE = f"arq:queue:worker-tests-{secrets.token_hex(4)}"

KEY_BODY = (
    '{"data": {"label": "sk-or-v1-0e6...c96", "limit": 100, "limit_reset": "monthly", "limit_remaining": 74.5,'
    ' "include_byok_in_limit": false, "usage": 131.2, "usage_daily": 1.25, "usage_weekly": 7.5,'
    ' "usage_monthly": 25.5, "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0,'
    ' "byok_usage_monthly": 0, "is_free_tier": false, "is_management_key": false, "is_provisioning_key": false,'
    ' "creator_user_id": "user_2dHFtVWx2n56w6HkM0000000000", "expires_at": null,'
    ' "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},'
    ' "free_model_daily_requests": 50}}'
)
CREDITS_BODY = '{"data": {"total_credits": 100.5, "total_usage": 25.7512345678}}'


def key_row(n: int, **overrides: Any) -> dict[str, Any]:
    """Key `n` of a `GET /keys` page, with a field the worker does not know."""
    names = {"hash": f"{n:064x}", "name": f"Key {n}", "label": f"sk-or-v1-{n:03d}...{n:03d}"}
    return key_list_row(**{**names, "some_future_field": 1, **overrides})


def activity_row(day: str, model: str = "openai/gpt-4.1", usage: str = "0.015") -> str:
    return (
        f'{{"date": "{day}", "model": "{model}", "model_permaslug": "{model}-2025-04-14",'
        ' "endpoint_id": "550e8400-e29b-41d4-a716-446655440000", "provider_name": "OpenAI",'
        f' "usage": {usage}, "byok_usage_inference": 0.012, "requests": 5,'
        ' "prompt_tokens": 50, "completion_tokens": 125, "reasoning_tokens": 25}'
    )


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = "{}"
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


Handler = Callable[[Seen], "Reply | Any"]


class FakeServer:
    """A real HTTP server whose answers the test scripts: per path, a queue of replies (the last one
    repeats) or a function of the request. Every request is recorded."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.seen: list[Seen] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def reply(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def handle(self, method: str, path: str, handler: Handler) -> None:
        self.handlers[(method, path)] = handler

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = codec.loads(raw) if raw else None
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body, raw)
        self.seen.append(seen)
        handler = self.handlers.get((request.method, request.path))
        if handler is not None:
            result = handler(seen)
            if isinstance(result, Reply):
                return await self._render(result)
            if result is None:
                return web.Response(status=204, headers={"Date": DATE_HEADER})
            return await self._render(Reply(body=codec.dumps(result)))
        queue = self.replies.get(request.path)
        if not queue:
            return web.json_response({"error": {"code": 404, "message": "Resource not found"}}, status=404)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return await self._render(reply)

    async def _render(self, reply: Reply) -> web.Response:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        headers = {"Date": DATE_HEADER, **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers, content_type=reply.content_type)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@pytest.fixture
async def openrouter() -> AsyncIterator[FakeServer]:
    async with FakeServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Internal(FakeServer):
    """auth, keys and usage's internal APIs on one port, keeping what the worker sent."""

    def __init__(self) -> None:
        super().__init__()
        self.plaintext: dict[str, str] = {}
        self.workspaces: dict[str, str] = {}
        self.unavailable: dict[str, str] = {}  # key id -> reason a reveal gives (inactive, unreadable)
        self.due: list[dict[str, Any]] = []
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.credits: list[dict[str, Any]] = []
        self.keys: list[dict[str, Any]] = []
        self.activity: list[dict[str, Any]] = []
        self.key_statuses: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.refuse_tokens: set[str] = set()
        self.handle("POST", "/internal/service-tokens", self._token)
        self.claimed: list[str] = []  # every key id a due claim handed out, in order
        self.handle("GET", "/internal/keys/due", lambda s: {"items": self.due[: int(s.query.get("limit", 100))]})
        self.handle("POST", "/internal/keys/due/claim", self._claim)
        self.handle("POST", "/internal/snapshots", self._snapshots)
        self.handle("POST", "/internal/keys/reveal", self._reveal)
        self.handle("POST", "/internal/keys/status", self._status)
        self.handle("POST", "/internal/retention", lambda s: {"deleted": {"snapshots": 0}})
        self.handle("POST", "/internal/key-status", self._key_status)

    def add_key(self, plaintext: str, workspace_id: str | None = None) -> str:
        key_id = str(uuid.uuid4())
        self.plaintext[key_id] = plaintext
        self.workspaces[key_id] = workspace_id or str(uuid.uuid4())
        for what, store in (("credits", self.credits), ("keys", self.keys), ("activity", self.activity)):
            method = "POST" if what == "credits" else "PUT"
            self.handle(method, f"/internal/accounts/{key_id}/{what}", self._keeper(store))
        return key_id

    @staticmethod
    def _keeper(store: list[dict[str, Any]]) -> Handler:
        """A handler keeping each request's body in `store` (answered 204)."""
        return lambda seen: store.append(seen.body)

    def _token(self, seen: Seen) -> Any:
        if seen.body.get("client_secret") != "worker-client-secret-for-tests":
            return Reply(401, '{"title": "Unauthorized"}')
        self.tokens_issued += 1
        return {
            "access_token": f"tok-{seen.body['audience']}-{self.tokens_issued}",
            "token_type": "bearer",
            "expires_in": 300,
            "scope": "x",
        }

    def _authorised(self, seen: Seen, audience: str) -> bool:
        token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
        return token.startswith(f"tok-{audience}-") and token not in self.refuse_tokens

    def _reveal(self, seen: Seen) -> Any:
        """keys' batch reveal: each id revealed with its workspace, or listed as unavailable with a reason."""
        if not self._authorised(seen, "owr-keys"):
            return Reply(401, "{}")
        items, unavailable = [], []
        for key_id in seen.body["ids"]:
            if key_id not in self.plaintext:
                unavailable.append({"id": key_id, "reason": "not_found"})
            elif key_id in self.unavailable:
                unavailable.append({"id": key_id, "reason": self.unavailable[key_id]})
            else:
                items.append(
                    {
                        "id": key_id,
                        "workspace_id": self.workspaces[key_id],
                        "name": f"key {key_id[:8]}",
                        "key": self.plaintext[key_id],
                    }
                )
        return {"items": items, "unavailable": unavailable}

    def _status(self, seen: Seen) -> Any:
        """keys' batch status: each report kept (without its id) under its key; unknown keys not_found."""
        if not self._authorised(seen, "owr-keys"):
            return Reply(401, "{}")
        applied, not_found = [], []
        for item in seen.body["items"]:
            report = dict(item)
            key_id = report.pop("id")
            if key_id not in self.plaintext:
                not_found.append(key_id)
                continue
            self.statuses.setdefault(key_id, []).append(report)
            self.due = [d for d in self.due if d["id"] != key_id]  # a reported key is not due any more, as in keys
            applied.append(key_id)
        return {"applied": applied, "ignored": [], "not_found": not_found}

    def _claim(self, seen: Seen) -> Any:
        """keys' due claim: at most `limit`, none leased already (the lease outlives the test), keys OpenRouter
        rejected as `invalid` says; each workspace's keys ranked (never synced first, then the oldest sync,
        then id) and every workspace's first before anyone's second. `after` is ignored, as in keys."""
        body = seen.body
        invalid: str = body.get("invalid", "exclude")

        def wanted(status: str) -> bool:
            return invalid == "include" or (status == "invalid") == (invalid == "only")

        def staleness(d: dict[str, Any]) -> tuple[bool, str, str]:
            return (d["last_synced_at"] is not None, d["last_synced_at"] or "", d["id"])

        free = sorted((d for d in self.due if d["id"] not in self.claimed and wanted(d["status"])), key=staleness)
        ranks: dict[str, int] = {}
        ranked = []
        for d in free:
            ranks[d["workspace_id"]] = ranks.get(d["workspace_id"], 0) + 1
            ranked.append((ranks[d["workspace_id"]], staleness(d), d))
        page = [d for _, _, d in sorted(ranked, key=lambda r: r[:2])][: body.get("limit", 1000)]
        self.claimed.extend(d["id"] for d in page)
        return {"items": page}

    def _key_status(self, seen: Seen) -> Any:
        if not self._authorised(seen, "owr-usage"):
            return Reply(401, "{}")
        self.key_statuses.extend(seen.body["items"])
        return {"raised": 0}

    def _snapshots(self, seen: Seen) -> Any:
        if not self._authorised(seen, "owr-usage"):
            return Reply(401, "{}")
        self.snapshots.extend(seen.body["items"])
        return {"stored": len(seen.body["items"]), "duplicates": 0}


@pytest.fixture
async def internal() -> AsyncIterator[Internal]:
    async with Internal() as server:
        yield server


@pytest.fixture
def settings_factory(redis_url: str) -> Callable[..., WorkerSettings]:
    def make(**overrides: Any) -> WorkerSettings:
        values: dict[str, Any] = {
            "environment": "test",
            "redis_url": redis_url,
            "service_client_secret": "worker-client-secret-for-tests",
            "openrouter_retry_base_seconds": 0.01,
            "openrouter_retry_cap_seconds": 0.05,
            "openrouter_timeout_seconds": 2.0,
            "openrouter_max_rps": 1000,
            "openrouter_burst": 100,
            "queue_name": QUEUE,
        }
        values.update(overrides)
        return WorkerSettings.model_validate(values)

    return make


@pytest.fixture
async def arq_redis(redis_url: str, redis_client: Any) -> AsyncIterator[ArqRedis]:
    """arq's pool on the test database (flushed by `redis_client`), as the worker has it in ctx, on this
    suite's own queue: the end-to-end suite's worker, still running, reads the default one."""
    pool = ArqRedis.from_url(redis_url)
    pool.default_queue_name = QUEUE
    yield pool
    await pool.aclose()


@pytest.fixture
async def make_ctx(
    settings_factory: Callable[..., WorkerSettings], arq_redis: ArqRedis, openrouter: FakeServer, internal: Internal
) -> AsyncIterator[Callable[..., dict[str, Any]]]:
    """A worker ctx (real clients, real Redis) pointed at the fake OpenRouter and internal servers."""
    made: list[dict[str, Any]] = []

    def make(**overrides: Any) -> dict[str, Any]:
        url = internal.url
        settings = settings_factory(
            openrouter_base_url=openrouter.url + "/api/v1", auth_url=url, keys_url=url, usage_url=url, **overrides
        )
        ctx: dict[str, Any] = {"settings": settings, "redis": arq_redis, "job_try": 1}
        build_clients(ctx)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        await close_clients(ctx)


def claimed(
    channel_type: str = "webhook",
    *,
    url: str | None = None,
    email: str | None = None,
    secrets: list[str] | None = None,
    event_type: str = "test",
    data: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
    attempt: int = 1,
) -> ClaimedDelivery:
    """A delivery as usage's claim hands it out (its channel's target revealed)."""
    return ClaimedDelivery.model_validate(
        {
            "id": uuid.uuid4(),
            "attempt": attempt,
            "event": {
                "id": event_id or uuid.uuid4(),
                "type": event_type,
                "occurred_at": "2026-12-03T14:00:00.250000+00:00",
                "data": data or {},
            },
            "channel": {
                "id": uuid.uuid4(),
                "workspace_id": uuid.uuid4(),
                "type": channel_type,
                "name": f"my {channel_type}",
                "url": url,
                "email": email,
                "secrets": secrets or [],
            },
        }
    )


class Outbox:
    """usage's side of the contract, in memory: due deliveries leased by a claim, each attempt's result kept."""

    def __init__(self, internal: Internal) -> None:
        self.internal = internal
        self.pending: dict[uuid.UUID, ClaimedDelivery] = {}
        self.leased: set[uuid.UUID] = set()
        self.attempts: dict[uuid.UUID, int] = {}
        self.results: list[tuple[uuid.UUID, dict[str, Any], float]] = []
        self.claims: list[dict[str, Any]] = []
        self.backlog: dict[str, Any] | None = None
        self.claim_reply: Reply | None = None
        self.extra_items: list[dict[str, Any]] = []
        internal.handle("POST", "/internal/deliveries/claim", self._claim)

    def add(self, delivery: ClaimedDelivery) -> ClaimedDelivery:
        self.pending[delivery.id] = delivery
        self.internal.handle("POST", f"/internal/deliveries/{delivery.id}/result", self._result(delivery.id))
        return delivery

    def _claim(self, seen: Seen) -> Any:
        if not self.internal._authorised(seen, "owr-usage"):
            return Reply(401, "{}")
        self.claims.append(seen.body)
        if self.claim_reply is not None:
            return self.claim_reply
        free = [d for d in self.pending.values() if d.id not in self.leased][: seen.body["limit"]]
        items = []
        for delivery in free:
            self.leased.add(delivery.id)
            self.attempts[delivery.id] = self.attempts.get(delivery.id, 0) + 1
            items.append({**delivery.model_dump(mode="json"), "attempt": self.attempts[delivery.id]})
        items += self.extra_items
        backlog = self.backlog or {"depth": len(self.pending), "oldest_due_seconds": 1.5 if free else None}
        return {"items": items, "backlog": backlog}

    def _result(self, delivery_id: uuid.UUID) -> Callable[[Seen], Any]:
        def record(seen: Seen) -> Any:
            self.results.append((delivery_id, seen.body, time.monotonic()))
            self.leased.discard(delivery_id)
            outcome = seen.body["outcome"]
            if outcome != "failed":
                self.pending.pop(delivery_id, None)
            status = {"delivered": "delivered", "gone": "failed"}.get(outcome, "pending")
            return {
                "id": str(delivery_id),
                "status": status,
                "attempts": self.attempts.get(delivery_id, 0),
                "next_attempt_at": None,
                "channel_disabled": seen.body["outcome"] == "gone",
            }

        return record

    def outcomes(self) -> dict[uuid.UUID, str]:
        return {delivery_id: body["outcome"] for delivery_id, body, _ in self.results}


@pytest.fixture
def outbox(internal: Internal) -> Outbox:
    """usage's outbox routes, in memory, on the `internal` server."""
    return Outbox(internal)


@dataclass(frozen=True)
class Smtp:
    """A real SMTP server (the test kit's) and the `SMTP_URL` that reaches it."""

    inbox: Inbox
    url: str


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with smtp_server() as (inbox, port):
        yield Smtp(inbox, f"smtp://127.0.0.1:{port}")
