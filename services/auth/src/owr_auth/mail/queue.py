"""The worker's ARQ queue, as auth uses it: one `send_auth_mail(mail_id)` job per mail, queued off the
request's path once the mail's row has committed.

The job carries the mail's id and the request's trace, never a token or an address (arq logs job
arguments). A job that could not be queued (Redis away) leaves its mail pending: the worker's cron finds
pending mails a few minutes old and queues them again (`GET /internal/mail/pending`).
"""

from __future__ import annotations

import asyncio
import uuid

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from owr_auth.metrics import MAIL_ENQUEUES
from owr_auth.settings import AuthSettings
from owr_shared.context import new_traceparent, request_id_var, trace_id_var
from owr_shared.logging import get_logger
from owr_shared.wire.mail import SEND_AUTH_MAIL_JOB, auth_mail_job_id

log = get_logger(__name__)

ENQUEUE_TIMEOUT_SECONDS = 2.0


class MailQueue:
    """Queues `send_auth_mail` in the background; `aclose` waits for what is under way."""

    def __init__(self, arq: ArqRedis) -> None:
        self._arq = arq
        self._pending: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> MailQueue:
        # Connected on first use: auth starts, and signs people in, while Redis is away.
        arq = ArqRedis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        arq.default_queue_name = settings.queue_name
        return cls(arq)

    def submit(self, mail_id: uuid.UUID) -> None:
        """Queue the mail's job without waiting: the request answers in the same time whether or not it queued
        a mail (a password reset for an unknown address must look like one for a known one)."""
        task = asyncio.create_task(self.enqueue(mail_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def enqueue(self, mail_id: uuid.UUID) -> bool:
        """Queue the job now; False when Redis failed (the mail stays pending for the cron)."""
        trace_id = trace_id_var.get()
        try:
            await asyncio.wait_for(
                self._arq.enqueue_job(
                    SEND_AUTH_MAIL_JOB,
                    _job_id=auth_mail_job_id(mail_id),
                    mail_id=str(mail_id),
                    traceparent=new_traceparent(trace_id) if trace_id else None,
                    request_id=request_id_var.get(),
                ),
                timeout=ENQUEUE_TIMEOUT_SECONDS,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            MAIL_ENQUEUES.labels("failed").inc()
            log.warning("mail_enqueue_failed", mail_id=str(mail_id), error_type=type(exc).__name__)
            return False
        MAIL_ENQUEUES.labels("queued").inc()
        return True

    async def drain(self) -> None:
        """Wait for every job submitted so far to be queued (or to have failed)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self._arq.aclose()
