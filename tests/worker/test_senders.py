"""One delivery attempt per channel type against real receivers: a local HTTP server (webhook, Slack, Discord) and
a real SMTP server (aiosmtpd). Webhooks are verified with the `standardwebhooks` package, as a stranger would."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from owr_shared.wire import codec
from owr_worker.outbound import Outbound
from owr_worker.senders import Senders
from owr_worker.settings import WorkerSettings
from owr_worker.webhooks import new_secret
from tests.worker.conftest import FakeServer, Reply, Smtp, claimed

BUDGET = {"name": "Team X", "spend_usd": 8.5, "amount_usd": "10", "percent_used": 85, "threshold": 80}


@pytest.fixture
def receiver(openrouter: FakeServer) -> FakeServer:
    """The local receiver (a FakeServer like the OpenRouter stand-in); `/hook` answers 204 unless scripted."""
    openrouter.reply("/hook", Reply(204, ""))
    return openrouter


@pytest.fixture
def senders(settings_factory: Callable[..., WorkerSettings], smtp: Smtp) -> Callable[..., Senders]:
    def make(smtp_url: str | None = smtp.url, **overrides: Any) -> Senders:
        settings = settings_factory(smtp_url=smtp_url, **overrides)
        return Senders(
            Outbound(settings),
            smtp=None if smtp_url is None else _server(smtp_url),
            mail_from="Watcher <w@example.com>",
            timeout_seconds=settings.outbound_timeout_seconds,
        )

    return make


def _server(url: str) -> Any:
    from owr_worker.mail import parse_smtp_url

    return parse_smtp_url(url)


async def test_a_webhook_verifies_with_the_channel_secret_and_carries_the_event(receiver, senders) -> None:
    secret = new_secret()
    delivery = claimed(url=receiver.url + "/hook", secrets=[secret], event_type="budget.exceeded", data=BUDGET)
    attempt = await senders().send(delivery)
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("delivered", 204, None)
    (seen,) = receiver.requests("/hook")
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["webhook-id"] == str(delivery.event.id)
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 60
    payload = Webhook(secret).verify(seen.raw, seen.headers)
    assert payload == {"type": "budget.exceeded", "timestamp": "2026-12-03T14:00:00.250000Z", "data": BUDGET}
    assert codec.loads(seen.raw)["data"]["spend_usd"] == codec.loads(b"8.5")  # money as exact JSON numbers


async def test_a_retry_keeps_the_webhook_id_and_both_secrets_sign_during_a_rotation(receiver, senders) -> None:
    old, new = new_secret(), new_secret()
    first = claimed(url=receiver.url + "/hook", secrets=[new, old])
    again = claimed(url=receiver.url + "/hook", secrets=[new, old], event_id=first.event.id, attempt=2)
    for delivery in (first, again):
        assert (await senders().send(delivery)).outcome == "delivered"
    ids = [seen.headers["webhook-id"] for seen in receiver.requests("/hook")]
    assert ids == [str(first.event.id)] * 2
    last = receiver.requests("/hook")[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(last.raw, last.headers)
    Webhook(new).verify(last.raw, last.headers)


@pytest.mark.parametrize(
    ("reply", "outcome", "status", "retry_after"),
    [
        (Reply(200, "ok"), "delivered", 200, None),
        (Reply(500, "boom"), "failed", 500, None),
        (Reply(410, "gone"), "gone", 410, None),
        (Reply(429, "slow down", headers={"Retry-After": "120"}), "failed", 429, 120.0),
        (Reply(503, "", headers={"retry-after": "7"}), "failed", 503, 7.0),
        (Reply(301, "", headers={"Location": "https://elsewhere.example/"}), "failed", 301, None),
        (Reply(404, ""), "failed", 404, None),
    ],
)
async def test_only_a_2xx_succeeds_410_is_gone_and_retry_after_is_read(
    receiver, senders, reply, outcome, status, retry_after
) -> None:
    receiver.reply("/hook", reply)
    attempt = await senders().send(claimed(url=receiver.url + "/hook", secrets=[new_secret()]))
    assert (attempt.outcome, attempt.status_code, attempt.retry_after_seconds) == (outcome, status, retry_after)
    if outcome != "delivered":
        assert attempt.error is not None
        assert str(status) in attempt.error
        assert "127.0.0.1" not in attempt.error
        assert "hook" not in attempt.error
    assert len(receiver.requests("/hook")) == 1  # no redirect followed, no retry here


async def test_retry_after_as_an_http_date(receiver, senders) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    receiver.reply("/hook", Reply(503, "", headers={"Retry-After": later}))
    attempt = await senders().send(claimed(url=receiver.url + "/hook", secrets=[new_secret()]))
    assert attempt.retry_after_seconds is not None
    assert 590 <= attempt.retry_after_seconds <= 600


async def test_a_receiver_that_hangs_fails_as_a_timeout(receiver, senders) -> None:
    receiver.reply("/hook", Reply(200, "", delay=5))
    started = time.monotonic()
    attempt = await senders(outbound_timeout_seconds=0.3).send(
        claimed(url=receiver.url + "/hook", secrets=[new_secret()])
    )
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("failed", None, "timeout")
    assert time.monotonic() - started < 2


async def test_a_refused_address_fails_at_once_with_a_reason(receiver, settings_factory) -> None:
    production = settings_factory(OWR_ENV="production", service_client_secret="Zq8" + "x7Lm" * 10)
    senders = Senders(Outbound(production), smtp=None, mail_from="w@example.com", timeout_seconds=5)
    for url in (receiver.url.replace("http:", "https:") + "/hook", receiver.url + "/hook"):
        attempt = await senders.send(claimed(url=url, secrets=[new_secret()]))
        assert attempt.outcome == "failed"
        assert attempt.status_code is None
        assert attempt.error is not None
        assert attempt.error.startswith("refused: ")
        assert "127.0.0.1" not in attempt.error
    assert receiver.requests("/hook") == []


async def test_a_closed_port_fails_without_naming_the_url(senders) -> None:
    from tests.support.ports import closed_port

    attempt = await senders().send(claimed(url=f"http://127.0.0.1:{closed_port()}/hook", secrets=[new_secret()]))
    assert attempt.outcome == "failed"
    assert attempt.error == "connection failed (ClientConnectorError)"


async def test_slack_and_discord_get_their_incoming_webhook_bodies(receiver, senders) -> None:
    for kind in ("slack", "discord"):
        delivery = claimed(kind, url=receiver.url + "/hook", event_type="budget.threshold_crossed", data=BUDGET)
        assert (await senders().send(delivery)).outcome == "delivered"
    slack, discord = (seen.body for seen in receiver.requests("/hook"))
    assert slack == {
        "text": "*Budget 'Team X' passed 80 %*\n$8.50 of $10.00 this period (85 %)\nScope: the whole workspace."
    }
    assert set(discord) == {"content", "allowed_mentions"}
    assert discord["allowed_mentions"] == {"parse": []}
    assert discord["content"].startswith("**Budget 'Team X' passed 80 %**\n$8.50 of $10.00 this period (85 %)")
    assert all("webhook-signature" not in seen.headers for seen in receiver.requests("/hook"))


def _parts(mail: Message) -> dict[str, str]:
    return {
        part.get_content_type(): bytes(part.get_payload(decode=True)).decode()
        for part in mail.walk()
        if not part.is_multipart()
    }


async def test_an_email_has_text_and_html_and_no_secret(receiver, senders, smtp) -> None:
    secret = new_secret()
    data = {**BUDGET, "name": "<b>Team</b> & co"}
    delivery = claimed("email", email="alice@example.com", secrets=[secret], event_type="budget.exceeded", data=data)
    assert (await senders().send(delivery)).outcome == "delivered"
    (mail,) = smtp.inbox.messages
    assert mail["To"] == "alice@example.com"
    assert mail["From"] == "Watcher <w@example.com>"
    assert mail["Subject"] == "[OpenRouter Watcher] Budget '<b>Team</b> & co' exceeded"
    assert mail["Auto-Submitted"] == "auto-generated"
    parts = _parts(mail)
    assert set(parts) == {"text/plain", "text/html"}
    assert "$8.50 of $10.00 this period (85 %)" in parts["text/plain"]
    assert "&lt;b&gt;Team&lt;/b&gt; &amp; co" in parts["text/html"]
    assert "<b>Team</b>" not in parts["text/html"]
    raw = mail.as_string()
    assert secret not in raw
    assert secret.removeprefix("whsec_") not in raw


async def test_a_confirmation_email_carries_its_link_and_nothing_else(senders, smtp) -> None:
    token = "owrc_" + "0" * 32 + "t0k3n-" * 7 + "x"
    link = f"https://watcher.example.com/confirm-email-channel?token={token}"
    delivery = claimed("email", email="bob@example.com", event_type="channel.confirmation", data={"name": "ops"})
    assert token not in repr(delivery.model_copy(update={"confirmation_url": link}))
    missing = await senders().send(delivery)
    assert (missing.outcome, missing.error) == ("failed", "the confirmation link is missing")
    attempt = await senders().send(delivery.model_copy(update={"confirmation_url": link}))
    assert attempt.outcome == "delivered"
    (mail,) = smtp.inbox.messages
    assert (mail["To"], mail["Subject"]) == (
        "bob@example.com",
        "[OpenRouter Watcher] Confirm that this address should receive alerts",
    )
    parts = _parts(mail)
    assert link in parts["text/plain"].splitlines()
    # The channel's name is its creator's words: they never reach an address nobody confirmed.
    assert "my email" not in parts["text/plain"] + parts["text/html"]
    assert f'<a href="{link}">Confirm this address</a>' in parts["text/html"]


async def test_email_without_smtp_or_refused_fails_with_a_reason(senders, smtp) -> None:
    delivery = claimed("email", email="alice@example.com")
    assert (await senders(smtp_url=None).send(delivery)).error == "email is not set up on this server (SMTP_URL)"
    smtp.inbox.refuse = 550
    attempt = await senders().send(delivery)
    assert (attempt.outcome, attempt.error) == ("failed", "the mail server answered 550")
    assert (await senders().send(claimed("email"))).error == "the channel has no address"
    assert (await senders().send(claimed("slack"))).error == "the channel has no URL"
