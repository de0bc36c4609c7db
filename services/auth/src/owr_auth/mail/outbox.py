"""Queue an email: its row in the caller's transaction, its job once that transaction has committed."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.mail.queue import MailQueue
from owr_auth.mail.repository import MailRepository
from owr_auth.metrics import MAILS_QUEUED
from owr_shared.db import after_commit
from owr_shared.logging import get_logger
from owr_shared.wire.mail import MailKind

log = get_logger(__name__)


async def queue_mail(
    session: AsyncSession,
    queue: MailQueue,
    *,
    kind: MailKind,
    recipient: str,
    user_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a mail to send and queue its job after commit (never when the transaction rolls back).

    The row holds no token: the renderer of `kind` mints one when the worker sends the mail. A kind needs a
    renderer in `owr_auth.mail.renderers`; `subject_id` names the row it is about (an invitation).
    """
    mail = await MailRepository(session).add(kind=kind, recipient=recipient, user_id=user_id, subject_id=subject_id)

    mail_id = mail.id

    async def queued() -> None:
        MAILS_QUEUED.labels(kind).inc()
        queue.submit(mail_id)

    after_commit(session, queued)
    log.info("mail_queued", mail_id=str(mail_id), kind=kind, user_id=str(user_id) if user_id else None)
    return mail_id
