"""One delivery attempt per channel type, and what it came to (`Attempt`, reported to usage as it is).

- webhook: Standard Webhooks (`webhooks.py`): `POST` of `{"type", "timestamp", "data"}`, `webhook-id` = the
  event id (the same on every retry and every channel), signed with each of the channel's secrets;
- slack / discord: their incoming-webhook bodies (`alert_formats.py`);
- email: plain text plus HTML over `SMTP_URL` (`mail.py`).

Only a 2xx is `delivered`; a 410 is `gone` (the receiver asks us to stop: usage disables the channel); anything
else is `failed`, with the receiver's `Retry-After` when it sent one. URLs go out through `outbound.py` (checked,
pinned, no redirect). An error recorded here is a few words: never the URL (a Slack or Discord URL is itself a
credential), the address, a secret, or the receiver's body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

import aiohttp

from owr_shared.wire import codec
from owr_shared.wire.alerts import ClaimedDelivery, ClaimedEvent, DeliveryResult
from owr_worker import alert_formats, confirmation_mail, mail, webhooks
from owr_worker.alert_text import describe
from owr_worker.backoff import parse_retry_after
from owr_worker.outbound import Outbound, OutboundAnswer, OutboundRefused
from owr_worker.outbound import describe as describe_failure

Outcome = Literal["delivered", "failed", "gone"]
USER_AGENT = "OpenRouter-Watcher-Webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_after_seconds: float | None = None

    def result(self) -> DeliveryResult:
        return DeliveryResult(
            outcome=self.outcome,
            status_code=self.status_code,
            error=self.error,
            retry_after_seconds=self.retry_after_seconds,
        )


def failed(error: str) -> Attempt:
    return Attempt("failed", error=error)


def webhook_body(event: ClaimedEvent) -> bytes:
    """DESIGN §11's body: the event's type, its time in ISO 8601 UTC, and its data, as exact JSON."""
    at = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    timestamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return codec.dumps({"type": event.type, "timestamp": timestamp, "data": event.data})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def judge(answer: OutboundAnswer) -> Attempt:
    """A receiver's answer as an attempt: 2xx delivered, 410 gone, anything else failed."""
    status = answer.status
    if 200 <= status < 300:
        return Attempt("delivered", status_code=status)
    if status == 410:
        return Attempt("gone", status_code=status, error="the receiver answered 410 Gone: it asks for no more")
    why = " (redirects are not followed)" if 300 <= status < 400 else ""
    retry_after = parse_retry_after(_header(answer.headers, "Retry-After"))
    return Attempt(
        "failed", status_code=status, error=f"the receiver answered {status}{why}", retry_after_seconds=retry_after
    )


class Senders:
    """Sends one claimed delivery by its channel's type. Holds no connection: each request is made afresh
    (`Outbound.post`), each email is one SMTP session."""

    def __init__(
        self, outbound: Outbound, *, smtp: mail.SmtpServer | None, mail_from: str, timeout_seconds: float
    ) -> None:
        self._outbound = outbound
        self._smtp = smtp
        self._mail_from = mail_from
        self._timeout = timeout_seconds

    async def send(self, delivery: ClaimedDelivery) -> Attempt:
        channel = delivery.channel
        if channel.type == "email":
            return await self._email(delivery)
        if not channel.url:
            return failed("the channel has no URL")
        if channel.type == "webhook":
            return await self._webhook(channel.url, channel.secrets, delivery.event)
        words = describe(delivery.event.type, delivery.event.data, channel_name=channel.name)
        body = alert_formats.slack(words) if channel.type == "slack" else alert_formats.discord(words)
        return await self._post(channel.url, codec.dumps(body), {"content-type": "application/json"})

    async def _webhook(self, url: str, secrets: list[str], event: ClaimedEvent) -> Attempt:
        body = webhook_body(event)
        try:
            headers = webhooks.headers(secrets, str(event.id), int(time.time()), body)
        except webhooks.BadSecret:
            return failed("the channel's signing secret cannot be used")
        return await self._post(url, body, headers)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        try:
            answer = await self._outbound.post(url, body, {**headers, "user-agent": USER_AGENT})
        except OutboundRefused as exc:
            # Refused before any connection: the same URL is refused next time too, so usage's backoff (not a
            # quick retry here) decides when to look again; the channel's owner sees why in the delivery log.
            return failed(f"refused: {exc.reason}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return failed(describe_failure(exc))
        return judge(answer)

    async def _email(self, delivery: ClaimedDelivery) -> Attempt:
        channel = delivery.channel
        if self._smtp is None:
            return failed("email is not set up on this server (SMTP_URL)")
        if not channel.email:
            return failed("the channel has no address")
        if delivery.event.type == confirmation_mail.EVENT_TYPE:
            if not delivery.confirmation_url:
                return failed("the confirmation link is missing")
            subject = confirmation_mail.SUBJECT
            text = confirmation_mail.plain(delivery.confirmation_url)
            html = confirmation_mail.html_body(delivery.confirmation_url)
        else:
            words = describe(delivery.event.type, delivery.event.data, channel_name=channel.name)
            subject = alert_formats.email_subject(words)
            text = alert_formats.plain(words, channel_name=channel.name)
            html = alert_formats.html_body(words, channel_name=channel.name)
        try:
            message = mail.message(self._mail_from, channel.email, subject, text, html)
        except (ValueError, TypeError):
            return failed("the channel's address cannot be used")
        # An alert, not a person: auto-responders (out-of-office replies) stay quiet.
        message["Auto-Submitted"] = "auto-generated"
        try:
            await mail.send(self._smtp, message, timeout_seconds=self._timeout)
        except mail.MailFailed as exc:
            return failed(str(exc))
        return Attempt("delivered")
