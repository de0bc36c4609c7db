"""`deliver_alerts` through the real usage app: channels made with usage's public API, test events in its outbox,
the worker's claims and reports over HTTP with real service tokens (`alerts:deliver`), real receivers and a real
SMTP server. usage runs in-process (uvicorn) on a database of its own, so no other suite's deliveries are claimed
and the outbox's figures are this module's alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from prometheus_client import REGISTRY
from standardwebhooks import Webhook

from owr_usage.app import create_app
from owr_usage.settings import UsageSettings
from owr_worker.alerts_client import ALERTS_SCOPE
from owr_worker.deliveries import deliver_alerts
from owr_worker.settings import WorkerSettings
from owr_worker.worker import build_clients, close_clients
from tests.support.apps import served
from tests.support.db import migrated_database
from tests.support.http import bearer
from tests.support.settings import service_settings
from tests.support.tokens import TestKeyring
from tests.worker.conftest import FakeServer, Reply, Seen, Smtp

KEYRING = TestKeyring(service_audience="owr-usage", default_scopes=("usage:ingest", "usage:cleanup", ALERTS_SCOPE))


@pytest.fixture(scope="module")
def alerts_database(infra: dict[str, str]) -> Iterator[str]:
    with migrated_database(infra["database_url"], "owr_test_alerts") as url:
        yield url


@pytest.fixture
async def usage(alerts_database: str, redis_url: str) -> AsyncIterator[str]:
    """The real usage app on its own database, with retries a fifth of a second apart."""
    overrides = {"DELIVERY_RETRY_SECONDS": "0.2,0.2,0.2,0.2,0.2,0.2,0.2"}
    settings = service_settings(UsageSettings, alerts_database, redis_url, {"DB_POOL_SIZE": 5}, overrides)
    async with served(create_app(settings, jwks_fetcher=KEYRING.fetch)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def auth() -> AsyncIterator[FakeServer]:
    """auth's service-token route: tokens signed as auth signs them, with exactly the scopes asked for."""

    def token(seen: Seen) -> Any:
        scopes = tuple(str(seen.body.get("scope") or "").split())
        return {"access_token": KEYRING.service_token(scopes), "token_type": "bearer", "expires_in": 300, "scope": ""}

    async with FakeServer() as server:
        server.handle("POST", "/internal/service-tokens", token)
        yield server


@pytest.fixture
async def ctx(
    settings_factory: Callable[..., WorkerSettings], arq_redis: ArqRedis, usage: str, auth: FakeServer, smtp: Smtp
) -> AsyncIterator[dict[str, Any]]:
    settings = settings_factory(
        auth_url=auth.url, keys_url=auth.url, usage_url=usage, smtp_url=smtp.url, outbound_timeout_seconds=3.0
    )
    ctx: dict[str, Any] = {"settings": settings, "redis": arq_redis, "job_try": 1}
    build_clients(ctx)
    yield ctx
    await close_clients(ctx)


class Workspace:
    """A fresh workspace's owner, calling usage's public API."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.headers = bearer(KEYRING.access_token(str(uuid.uuid4()), str(uuid.uuid4())))

    async def channel(self, **body: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/channels", headers=self.headers, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def test_event(self, channel_id: str) -> str:
        r = await self.client.post(f"/api/v1/channels/{channel_id}/test", headers=self.headers)
        assert r.status_code == 202, r.text
        return str(r.json()["event_id"])

    async def get(self, path: str) -> Any:
        r = await self.client.get(path, headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def workspace(usage: str) -> AsyncIterator[Workspace]:
    async with httpx.AsyncClient(base_url=usage, timeout=10) as client:
        yield Workspace(client)


async def deliver_until(ctx: dict[str, Any], done: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    """Run `deliver_alerts` as its cron would, until `done`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "the outbox did not drain in time"
        await deliver_alerts(ctx)
        await asyncio.sleep(0.1)


async def test_a_webhook_is_retried_with_the_same_id_and_verifies(ctx, workspace, openrouter, auth) -> None:
    receiver = openrouter
    receiver.reply("/hook", Reply(500, "down"), Reply(503, "", headers={"Retry-After": "1"}), Reply(204, ""))
    channel = await workspace.channel(type="webhook", name="ops hook", url=receiver.url + "/hook")
    secret = channel["secret"]
    event_id = await workspace.test_event(channel["id"])

    async def delivered() -> bool:
        log = await workspace.get(f"/api/v1/channels/{channel['id']}/deliveries")
        return any(item["status"] == "delivered" for item in log["items"])

    await deliver_until(ctx, delivered)
    requests = receiver.requests("/hook")
    assert [seen.headers["webhook-id"] for seen in requests] == [event_id] * 3
    for seen in requests:
        payload = Webhook(secret).verify(seen.raw, seen.headers)  # a stranger's verifier, the channel's secret
        assert (payload["type"], payload["data"]["channel_id"]) == ("test", channel["id"])
    log = (await workspace.get(f"/api/v1/channels/{channel['id']}/deliveries"))["items"]
    attempts = sorted(log, key=lambda item: item["attempt"])
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 503), (3, 204)]
    assert attempts[0]["error"] == "the receiver answered 500"
    assert receiver.url not in str(log)  # the log says what happened, never where
    # The worker's alert token carried alerts:deliver alone.
    scopes = {s.body["scope"] for s in auth.requests("/internal/service-tokens") if s.body["audience"] == "owr-usage"}
    assert scopes == {ALERTS_SCOPE}


async def test_slack_discord_and_email_channels_receive_their_formats(ctx, workspace, openrouter, smtp) -> None:
    receiver = openrouter
    receiver.reply("/slack", Reply(200, "ok"))
    receiver.reply("/discord", Reply(204, ""))
    slack = await workspace.channel(type="slack", name="team slack", url=receiver.url + "/slack")
    discord = await workspace.channel(type="discord", name="team discord", url=receiver.url + "/discord")
    email = await workspace.channel(type="email", name="on call", email="oncall@example.com")
    await confirm_by_mail(ctx, workspace, smtp, email["id"])
    for channel in (slack, discord, email):
        await workspace.test_event(channel["id"])

    async def all_arrived() -> bool:
        return bool(receiver.requests("/slack") and receiver.requests("/discord") and smtp.inbox.messages)

    await deliver_until(ctx, all_arrived)
    (slack_body,) = [seen.body for seen in receiver.requests("/slack")]
    assert slack_body["text"].startswith("*Test alert from OpenRouter Watcher*\nThis is a test of the channel")
    (discord_body,) = [seen.body for seen in receiver.requests("/discord")]
    assert discord_body["allowed_mentions"] == {"parse": []}
    assert discord_body["content"].startswith("**Test alert from OpenRouter Watcher**")
    (mail,) = smtp.inbox.messages
    assert mail["To"] == "oncall@example.com"
    assert mail["Subject"] == "[OpenRouter Watcher] Test alert from OpenRouter Watcher"
    assert receiver.url not in mail.as_string()


async def confirm_by_mail(ctx: dict[str, Any], workspace: Workspace, smtp: Smtp, channel_id: str) -> None:
    """The new email channel's one mail is its confirmation; its link's token confirms it (no sign-in)."""
    problem = await workspace.client.post(f"/api/v1/channels/{channel_id}/test", headers=workspace.headers)
    assert problem.json()["type"].endswith("/email-not-confirmed")

    async def mailed() -> bool:
        return bool(smtp.inbox.messages)

    await deliver_until(ctx, mailed)
    (letter,) = smtp.inbox.messages
    smtp.inbox.messages.clear()
    assert letter["Subject"] == "[OpenRouter Watcher] Confirm that this address should receive alerts"
    [text] = [
        bytes(part.get_payload(decode=True)).decode()
        for part in letter.walk()
        if part.get_content_type() == "text/plain"
    ]
    (link,) = [line for line in text.splitlines() if "/confirm-email-channel?token=" in line]
    token = link.split("?token=", 1)[1]
    r = await workspace.client.post("/api/v1/channel-confirmations", json={"token": token})
    assert r.status_code == 200, r.text
    assert (await workspace.get(f"/api/v1/channels/{channel_id}"))["confirmation"] == "confirmed"


async def test_a_410_disables_the_channel(ctx, workspace, openrouter) -> None:
    openrouter.reply("/gone", Reply(410, "gone"))
    channel = await workspace.channel(type="webhook", name="old hook", url=openrouter.url + "/gone")
    await workspace.test_event(channel["id"])

    async def disabled() -> bool:
        view = await workspace.get(f"/api/v1/channels/{channel['id']}")
        return not view["enabled"]

    await deliver_until(ctx, disabled)
    assert len(openrouter.requests("/gone")) == 1
    (attempt,) = (await workspace.get(f"/api/v1/channels/{channel['id']}/deliveries"))["items"]
    assert (attempt["status_code"], attempt["status"]) == (410, "failed")


async def test_the_outbox_figures_come_from_usage(ctx, workspace, openrouter) -> None:
    openrouter.reply("/slow", Reply(204, "", delay=0.5))
    channel = await workspace.channel(type="webhook", name="slow hook", url=openrouter.url + "/slow")
    for _ in range(3):
        await workspace.test_event(channel["id"])
    await asyncio.sleep(1.2)  # the events have waited a while when the claim comes
    assert await deliver_alerts(ctx) == {"delivered": 3}
    # usage's figures at the claim: the three pending (this module's database holds nothing else), the oldest
    # due for over a second.
    assert REGISTRY.get_sample_value("owr_worker_alert_outbox_depth") == 3
    oldest = REGISTRY.get_sample_value("owr_worker_alert_outbox_oldest_due_seconds")
    assert oldest is not None
    assert 1.0 <= oldest < 30
    assert await deliver_alerts(ctx) == {}
    assert REGISTRY.get_sample_value("owr_worker_alert_outbox_depth") == 0
    assert REGISTRY.get_sample_value("owr_worker_alert_outbox_oldest_due_seconds") == 0
