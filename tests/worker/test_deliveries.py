"""`deliver_alerts` against a stand-in of usage's outbox routes (the contract of `owr_shared.wire.alerts`) and real
receivers: every attempt reported, sends bounded, a dead receiver held to its timeout, one batch at a time, a
full batch followed by the next, and the outbox's figures on /metrics. (The same job through the real usage app:
`test_deliveries_usage.py`.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from arq import Retry
from prometheus_client import REGISTRY

from owr_shared.wire import codec
from owr_worker.alerts_client import ALERTS_SCOPE
from owr_worker.crons import monthly_digests, price_drift, weekly_digests
from owr_worker.deliveries import (
    DELIVER_ALERTS,
    DELIVERY_JOB_ID,
    NEXT_BATCH_JOB_ID,
    deliver_alerts,
    export_backlog,
    lease_seconds,
    poll_alert_deliveries,
)
from owr_worker.internal import ServiceError
from owr_worker.webhooks import new_secret
from owr_worker.worker import worker_settings
from tests.worker.conftest import QUEUE, FakeServer, Reply, Seen, Smtp, claimed


@pytest.fixture
def receiver(openrouter: FakeServer) -> FakeServer:
    openrouter.reply("/hook", Reply(200, "ok"))
    return openrouter


@pytest.fixture
async def ctx(make_ctx: Callable[..., dict[str, Any]], smtp: Smtp) -> dict[str, Any]:
    return make_ctx(smtp_url=smtp.url, outbound_timeout_seconds=2.0)


class Gauged:
    """A receiver that answers after `delay`, counting how many requests it holds at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = self.most = self.served = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.served += 1
        return web.Response(status=204)

    async def __aenter__(self) -> Gauged:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def slow() -> AsyncIterator[Gauged]:
    async with Gauged(delay=0.2) as server:
        yield server


async def test_a_batch_is_sent_and_every_attempt_reported(ctx, outbox, receiver, smtp, internal) -> None:
    secret = new_secret()
    hook = outbox.add(claimed(url=receiver.url + "/hook", secrets=[secret], event_type="key.invalid"))
    slack = outbox.add(claimed("slack", url=receiver.url + "/hook", event_type="key.invalid"))
    mail = outbox.add(claimed("email", email="ops@example.com", event_type="key.invalid", data={"key_name": "prod"}))
    counts = await deliver_alerts(ctx)
    assert counts == {"delivered": 3}
    assert outbox.outcomes() == {hook.id: "delivered", slack.id: "delivered", mail.id: "delivered"}
    assert outbox.claims == [{"limit": 32, "lease_seconds": lease_seconds(ctx["settings"])}]
    assert [m["Subject"] for m in smtp.inbox.messages] == ["[OpenRouter Watcher] Key 'prod' is invalid"]
    # The alert routes' token asks for alerts:deliver alone, apart from the sync's usage token.
    scopes = [
        s.body["scope"] for s in internal.requests("/internal/service-tokens") if s.body["audience"] == "owr-usage"
    ]
    assert scopes == [ALERTS_SCOPE]
    assert await deliver_alerts(ctx) == {}  # nothing left, nothing sent


async def test_a_retry_is_the_same_event_to_the_receiver(ctx, outbox, receiver) -> None:
    receiver.reply("/hook", Reply(500, "down"), Reply(503, "", headers={"Retry-After": "30"}), Reply(200, "ok"))
    delivery = outbox.add(claimed(url=receiver.url + "/hook", secrets=[new_secret()]))
    for _ in range(3):
        await deliver_alerts(ctx)
    reports = [body for _, body, _ in outbox.results]
    assert [(r["outcome"], r["status_code"], r["retry_after_seconds"]) for r in reports] == [
        ("failed", 500, None),
        ("failed", 503, 30.0),
        ("delivered", 200, None),
    ]
    ids = {seen.headers["webhook-id"] for seen in receiver.requests("/hook")}
    assert ids == {str(delivery.event.id)}
    assert len(receiver.requests("/hook")) == 3


async def test_sends_are_bounded_by_the_concurrency_setting(make_ctx, outbox, slow) -> None:
    ctx = make_ctx(delivery_concurrency=3, delivery_batch=12)
    for _ in range(12):
        outbox.add(claimed(url=slow.url, secrets=[new_secret()]))
    assert await deliver_alerts(ctx) == {"delivered": 12}
    assert slow.most == 3
    assert slow.served == 12


async def test_a_dead_receiver_holds_up_nothing_but_itself(make_ctx, outbox, receiver) -> None:
    """One receiver never answers: the others are delivered and reported at once, and it fails at the timeout."""
    ctx = make_ctx(outbound_timeout_seconds=3.0)
    receiver.reply("/dead", Reply(200, "", delay=30))
    dead = outbox.add(claimed(url=receiver.url + "/dead", secrets=[new_secret()]))
    alive = [outbox.add(claimed(url=receiver.url + "/hook", secrets=[new_secret()])) for _ in range(5)]
    started = time.monotonic()
    counts = await deliver_alerts(ctx)
    took = time.monotonic() - started
    assert counts == {"delivered": 5, "failed": 1}
    assert 3.0 <= took < 6.0
    reported = {delivery_id: at - started for delivery_id, _, at in outbox.results}
    assert all(reported[d.id] < 2.0 for d in alive)  # reported as they ended, not at the batch's end
    dead_report = next(body for delivery_id, body, _ in outbox.results if delivery_id == dead.id)
    assert (dead_report["outcome"], dead_report["error"]) == ("failed", "timeout")


async def test_one_batch_at_a_time(make_ctx, outbox, slow, internal) -> None:
    ctx = make_ctx()
    for _ in range(4):
        outbox.add(claimed(url=slow.url, secrets=[new_secret()]))
    first, second = await asyncio.gather(deliver_alerts(ctx), deliver_alerts(dict(ctx)))
    assert sorted([first, second], key=len) == [{}, {"delivered": 4}]
    assert len(outbox.claims) == 1


async def test_a_full_batch_queues_the_next_one(make_ctx, outbox, receiver, arq_redis) -> None:
    ctx = make_ctx(delivery_batch=2)
    for _ in range(5):
        outbox.add(claimed(url=receiver.url + "/hook", secrets=[new_secret()]))

    async def queued() -> set[str]:
        return {job_id.decode() for job_id in await arq_redis.zrange(QUEUE, 0, -1)}

    assert await deliver_alerts({**ctx, "job_id": DELIVERY_JOB_ID}) == {"delivered": 2}
    assert await queued() == {NEXT_BATCH_JOB_ID}
    # The next batch runs under the other id, and its own successor takes the first one back.
    await arq_redis.delete(f"arq:job:{NEXT_BATCH_JOB_ID}")
    await arq_redis.zrem(QUEUE, NEXT_BATCH_JOB_ID)
    assert await deliver_alerts({**ctx, "job_id": NEXT_BATCH_JOB_ID}) == {"delivered": 2}
    assert await queued() == {DELIVERY_JOB_ID}
    job = await arq_redis.get(f"arq:job:{DELIVERY_JOB_ID}")
    assert job is not None
    assert DELIVER_ALERTS.encode() in job
    await arq_redis.delete(f"arq:job:{DELIVERY_JOB_ID}")
    await arq_redis.zrem(QUEUE, DELIVERY_JOB_ID)
    assert await deliver_alerts({**ctx, "job_id": DELIVERY_JOB_ID}) == {"delivered": 1}
    assert await queued() == set()  # a short batch: the outbox is drained


async def test_usage_away_or_a_lost_report_never_fails_the_job(ctx, outbox, receiver, internal) -> None:
    outbox.claim_reply = Reply(503, "{}")
    delivery = outbox.add(claimed(url=receiver.url + "/hook", secrets=[new_secret()]))
    assert await deliver_alerts(ctx) == {}
    outbox.claim_reply = None
    internal.handle("POST", f"/internal/deliveries/{delivery.id}/result", lambda seen: Reply(503, "{}"))
    assert await deliver_alerts(ctx) == {"delivered": 1}  # sent; usage hands it out again once the lease lapses
    internal.handle("POST", f"/internal/deliveries/{delivery.id}/result", lambda seen: Reply(404, "{}"))
    outbox.leased.clear()
    assert await deliver_alerts(ctx) == {"delivered": 1}  # the channel was deleted meanwhile: nothing to record


async def test_an_event_this_worker_cannot_read_is_reported_failed(ctx, outbox, internal) -> None:
    odd = claimed(url="http://127.0.0.1:9/hook").model_dump(mode="json")
    odd["event"]["type"] = "budget.something_new"
    outbox.extra_items = [odd]
    seen: list[Any] = []

    def gone(request: Seen) -> Reply:
        seen.append(request.body)
        return Reply(404, "{}")

    internal.handle("POST", f"/internal/deliveries/{odd['id']}/result", gone)
    assert await deliver_alerts(ctx) == {"unreadable": 1}
    assert seen[0]["outcome"] == "failed"
    assert "cannot read" in seen[0]["error"]


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_the_outbox_figures_reach_every_worker_metrics(ctx, outbox, arq_redis) -> None:
    outbox.backlog = {"depth": 7, "oldest_due_seconds": 42.0}
    await deliver_alerts(ctx)
    assert gauge("owr_worker_alert_outbox_depth") == 7
    assert gauge("owr_worker_alert_outbox_oldest_due_seconds") == 42.0
    # Another worker's scrape reads the same figures from Redis; the oldest due one ages while nobody claims.
    stored = codec.loads(await arq_redis.get("owr:worker:alerts:backlog"))
    stored["observed_at"] = float(stored["observed_at"]) - 100
    await arq_redis.set("owr:worker:alerts:backlog", codec.dumps(stored))
    await export_backlog(arq_redis)
    oldest = gauge("owr_worker_alert_outbox_oldest_due_seconds")
    assert oldest is not None
    assert 141 < oldest < 150
    outbox.backlog = {"depth": 0, "oldest_due_seconds": None}
    await deliver_alerts(ctx)
    await export_backlog(arq_redis)
    assert (gauge("owr_worker_alert_outbox_depth"), gauge("owr_worker_alert_outbox_oldest_due_seconds")) == (0, 0)


async def test_attempts_are_counted_by_channel_type_and_outcome(ctx, outbox, receiver) -> None:
    name = "owr_worker_alert_deliveries_total"
    before = REGISTRY.get_sample_value(name, {"channel_type": "discord", "outcome": "gone"}) or 0.0
    receiver.reply("/hook", Reply(410, ""))
    outbox.add(claimed("discord", url=receiver.url + "/hook"))
    assert await deliver_alerts(ctx) == {"gone": 1}
    assert REGISTRY.get_sample_value(name, {"channel_type": "discord", "outcome": "gone"}) == before + 1
    assert REGISTRY.get_sample_value("owr_worker_alert_delivery_duration_seconds_count", {"channel_type": "discord"})


async def test_the_digest_crons_ask_usage_for_the_period_just_ended(make_ctx, internal) -> None:
    asked: list[Any] = []

    def digests(seen: Seen) -> Any:
        asked.append(seen.body)
        return {"raised": 2}

    internal.handle("POST", "/internal/digests", digests)
    ctx = make_ctx()
    ctx["clock"] = lambda: datetime(2026, 12, 7, 0, 5, 1, tzinfo=UTC)
    assert await weekly_digests(ctx) == 2
    assert await monthly_digests(ctx) == 2
    assert asked == [
        {"kind": "weekly", "at": "2026-12-07T00:05:01+00:00"},
        {"kind": "monthly", "at": "2026-12-07T00:05:01+00:00"},
    ]
    internal.handle("POST", "/internal/digests", lambda seen: Reply(503, "{}"))
    with pytest.raises(Retry):  # usage away: the whole (idempotent) run again in 5 minutes
        await weekly_digests(ctx)
    with pytest.raises(ServiceError):  # ... three times at most
        await weekly_digests({**ctx, "job_try": 3})


async def test_the_price_drift_cron_asks_usage_with_its_clock(make_ctx, internal) -> None:
    asked: list[Any] = []

    def drift(seen: Seen) -> Any:
        asked.append(seen.body)
        return {"raised": 3}

    internal.handle("POST", "/internal/price-drift", drift)
    ctx = make_ctx()
    ctx["clock"] = lambda: datetime(2026, 12, 8, 6, 25, 1, tzinfo=UTC)
    assert await price_drift(ctx) == 3
    assert asked == [{"at": "2026-12-08T06:25:01+00:00"}]
    internal.handle("POST", "/internal/price-drift", lambda seen: Reply(503, "{}"))
    with pytest.raises(Retry):  # usage away: the whole (idempotent) run again in 5 minutes
        await price_drift(ctx)
    with pytest.raises(ServiceError):  # ... three times at most
        await price_drift({**ctx, "job_try": 3})


def test_the_schedule(settings_factory) -> None:
    config = worker_settings(settings_factory(delivery_poll_seconds=5))
    crons = {job.name: job for job in config["cron_jobs"]}
    weekly, monthly, poll = (
        crons["cron:weekly_digests"],
        crons["cron:monthly_digests"],
        crons["cron:poll_alert_deliveries"],
    )
    assert (weekly.weekday, weekly.hour, weekly.minute, weekly.second) == ("mon", 0, 5, 0)
    assert (monthly.day, monthly.hour, monthly.minute, monthly.second) == (1, 0, 5, 0)
    # Daily, hours after the first account syncs of the day fetched `/activity`.
    drift = crons["cron:price_drift"]
    assert (drift.weekday, drift.day, drift.hour, drift.minute, drift.second) == (None, None, 6, 25, 0)
    assert (drift.unique, drift.max_tries) == (True, 3)
    assert poll.second == set(range(0, 60, 5))
    # A plain job, not a cron: arq holds a cron job's id "in progress" for a minute after it ends.
    (deliver,) = [f for f in config["functions"] if f.name == DELIVER_ALERTS]
    assert (deliver.keep_result_s, deliver.max_tries) == (0, 1)


async def test_the_poll_queues_one_delivery_job(make_ctx, arq_redis) -> None:
    ctx = make_ctx()
    assert await poll_alert_deliveries(ctx) is True
    assert await poll_alert_deliveries(ctx) is False  # queued already: nothing added
    assert [j.decode() for j in await arq_redis.zrange(QUEUE, 0, -1)] == [DELIVERY_JOB_ID]
