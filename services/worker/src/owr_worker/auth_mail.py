"""`send_auth_mail`: the emails auth asks for (address verification, password reset, invitation, security
notices), over SMTP.

auth queues the job with the mail's id (and the request's trace), never a token or an address: arq logs
job arguments. The job asks auth to render the mail (`POST {auth}/internal/mail/{id}/render`, the worker's
client credentials in HTTP Basic, scope `mail:render`), which mints the link's one-time token, when the mail
has one, at that moment; sends the message (`owr_worker.mail`); and reports `sent`, or `failed` once it gives
up.

At least once: a temporary SMTP refusal, or auth away, defers the job (`Retry`, full jitter) up to
`WORKER_JOB_MAX_TRIES` tries; a render after a retry mints a new link and auth discards the earlier one.
Once the server has taken a message, a Redis mark (`owr:worker:auth_mail:sent:{id}`, a day) keeps a retry
from sending it again when only the report failed. auth answering 410 (sent already, given up, no longer
wanted) ends the job quietly. The cron `requeue_auth_mail` queues again the mails auth still has pending a
few minutes after they were queued (their job was lost: Redis was away when auth queued it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp
from arq import Retry
from pydantic import BaseModel, ValidationError

from owr_shared.logging import get_logger
from owr_shared.wire import codec
from owr_shared.wire.mail import (
    MAX_FAILURE_REASON,
    SEND_AUTH_MAIL_JOB,
    MailFailure,
    PendingMail,
    RenderedMail,
    auth_mail_job_id,
)
from owr_worker import mail
from owr_worker.backoff import full_jitter
from owr_worker.internal import ServiceError
from owr_worker.jobs import job_settings
from owr_worker.metrics import AUTH_MAILS
from owr_worker.settings import WorkerSettings
from owr_worker.tracing import job_context, outgoing_headers

# The jobs' logger: every job logs under one name, as operators' queries expect.
log = get_logger("owr.worker.jobs")

SENT_MARK = "owr:worker:auth_mail:sent:"
SENT_MARK_SECONDS = 24 * 3600


class AuthMailClient:
    """auth's `/internal/mail/...` routes, with the worker's client credentials (HTTP Basic)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        client_id: str,
        client_secret: str,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._base = auth_url.rstrip("/") + "/internal/mail"
        self._authorization = aiohttp.encode_basic_auth(client_id, client_secret)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: WorkerSettings) -> AuthMailClient:
        secret = settings.service_client_secret.get_secret_value() if settings.service_client_secret else ""
        return cls(
            session,
            settings.auth_url,
            client_id=settings.service_client_id,
            client_secret=secret,
            timeout_seconds=settings.internal_timeout_seconds,
        )

    async def render(self, mail_id: str) -> RenderedMail | None:
        """The message, its link freshly minted; None when auth says it is not to be sent (404, 410)."""
        status, body = await self._call("POST", f"/{mail_id}/render", expect=(200,), gone=(404, 410))
        if status != 200:
            return None
        try:
            return RenderedMail.model_validate(body)
        except ValidationError:
            raise ServiceError("auth", "unreadable mail", retryable=True) from None

    async def sent(self, mail_id: str) -> None:
        await self._call("POST", f"/{mail_id}/sent", expect=(204,), gone=(404,))

    async def failed(self, mail_id: str, reason: str) -> None:
        body = MailFailure(reason=reason[:MAX_FAILURE_REASON])
        await self._call("POST", f"/{mail_id}/failed", body=body, expect=(204,), gone=(404,))

    async def pending(self) -> list[uuid.UUID]:
        _, body = await self._call("GET", "/pending", expect=(200,))
        try:
            return PendingMail.model_validate(body).ids
        except ValidationError:
            raise ServiceError("auth", "unreadable pending mails", retryable=True) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        expect: tuple[int, ...],
        gone: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        headers = {**outgoing_headers(), "Accept": "application/json", "Authorization": self._authorization}
        data = None if body is None else codec.encode(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, self._base + path, data=data, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                status, raw = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceError("auth", f"unreachable ({type(exc).__name__})", retryable=True) from None
        if status in gone:
            return status, None
        if status not in expect:
            raise ServiceError("auth", f"answered {status}", status=status, retryable=status >= 500 or status == 429)
        try:
            return status, codec.loads(raw) if raw else None
        except ValueError:
            raise ServiceError("auth", f"unreadable answer ({status})", retryable=True) from None


def _client(ctx: Mapping[str, Any]) -> AuthMailClient:
    client: AuthMailClient = ctx["auth_mail"]
    return client


def _defer(ctx: Mapping[str, Any], reason: str) -> Retry | None:
    """A `Retry` after full jitter while tries are left, else None (give up)."""
    settings = job_settings(ctx)
    job_try = int(ctx.get("job_try") or 1)
    if job_try >= settings.job_max_tries:
        return None
    delay = max(1.0, full_jitter(job_try, base=settings.job_retry_base_seconds, cap=settings.job_retry_cap_seconds))
    log.info("job_deferred", job_try=job_try, defer_seconds=round(delay, 1), reason=reason)
    AUTH_MAILS.labels("retry").inc()
    return Retry(defer=delay)


async def _give_up(ctx: Mapping[str, Any], mail_id: str, reason: str) -> str:
    log.warning("auth_mail_failed", reason=reason)
    AUTH_MAILS.labels("failed").inc()
    try:
        await _client(ctx).failed(mail_id, reason)
    except ServiceError as exc:
        # The mail stays pending at auth; the cron queues it again, and its next job tries once more.
        log.warning("auth_mail_report_failed", error=str(exc))
    return "failed"


async def _report_sent(ctx: Mapping[str, Any], mail_id: str) -> str:
    try:
        await _client(ctx).sent(mail_id)
    except ServiceError as exc:
        retry = _defer(ctx, f"reporting the mail sent: {exc}") if exc.retryable else None
        if retry is not None:
            raise retry from None
        log.warning("auth_mail_report_failed", error=str(exc))
    return "sent"


async def send_auth_mail(
    ctx: dict[str, Any], mail_id: str, traceparent: str | None = None, request_id: str | None = None
) -> str:
    """Render, send, report: `sent`, `dropped` (auth wants it no more), `failed` (given up)."""
    with job_context(SEND_AUTH_MAIL_JOB, traceparent=traceparent, request_id=request_id, mail_id=str(mail_id)):
        settings = job_settings(ctx)
        redis = ctx["redis"]
        mark = SENT_MARK + str(mail_id)
        if await redis.exists(mark):
            # Sent by an earlier try whose report did not reach auth.
            return await _report_sent(ctx, mail_id)
        server: mail.SmtpServer | None = ctx.get("smtp")
        if server is None:
            return await _give_up(ctx, mail_id, "no mail server is configured (SMTP_URL)")
        try:
            rendered = await _client(ctx).render(mail_id)
        except ServiceError as exc:
            retry = _defer(ctx, str(exc)) if exc.retryable else None
            if retry is not None:
                raise retry from None
            log.error("auth_mail_unrenderable", error=str(exc))
            AUTH_MAILS.labels("failed").inc()
            return "failed"
        if rendered is None:
            log.info("auth_mail_dropped")
            AUTH_MAILS.labels("dropped").inc()
            return "dropped"
        message = mail.message(settings.mail_from, rendered.to, rendered.subject, rendered.text, rendered.html)
        try:
            await mail.send(server, message, timeout_seconds=settings.outbound_timeout_seconds)
        except mail.MailFailed as exc:
            retry = _defer(ctx, str(exc)) if exc.retryable else None
            if retry is not None:
                raise retry from None
            return await _give_up(ctx, mail_id, str(exc))
        await redis.set(mark, 1, ex=SENT_MARK_SECONDS)
        AUTH_MAILS.labels("sent").inc()
        log.info("auth_mail_sent", kind=rendered.kind)
        return await _report_sent(ctx, mail_id)


async def requeue_auth_mail(ctx: dict[str, Any]) -> int:
    """Queue `send_auth_mail` again for the mails auth still has pending (one job per mail: never doubled)."""
    with job_context("requeue_auth_mail", traceparent=None, request_id=None):
        try:
            ids = await _client(ctx).pending()
        except ServiceError as exc:
            log.warning("pending_auth_mail_unavailable", error=str(exc))
            return 0
        redis = ctx["redis"]
        queued = 0
        for mail_id in ids:
            job = await redis.enqueue_job(SEND_AUTH_MAIL_JOB, _job_id=auth_mail_job_id(mail_id), mail_id=str(mail_id))
            queued += job is not None
        if ids:
            log.info("auth_mail_requeued", pending=len(ids), queued=queued)
        return queued
