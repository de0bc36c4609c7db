"""What the worker does with a mail, as auth sees it: render it (minting its link), then report the outcome.

At least once: a job retried after a crash renders the mail again, which mints a new link and discards
the unused earlier one (`email_tokens.mint`), so a mail has one live link at a time. Once the mail is
reported sent, failed or cancelled, it is not rendered again (410: the worker drops the job).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.email_tokens.repository import EmailTokenRepository
from owr_auth.mail.errors import MailGone, MailNotFound
from owr_auth.mail.models import CANCELLED, FAILED, PENDING, SENT, OutboundMail
from owr_auth.mail.renderers import RENDERERS
from owr_auth.mail.repository import MailRepository
from owr_auth.metrics import MAIL_OUTCOMES
from owr_auth.settings import AuthSettings
from owr_shared.logging import get_logger
from owr_shared.wire.mail import RenderedMail

log = get_logger(__name__)

# A mail rendered this often without an outcome is given up: each render mints a link, and a job that keeps
# crashing must not mint them for ever (the worker's own retries stop well before).
MAX_RENDERS = 10
# The cron queues again the mails pending for longer than this (their job was lost), up to a day old.
PENDING_AFTER = timedelta(minutes=2)
PENDING_FOR_AT_MOST = timedelta(days=1)


async def render(
    session: AsyncSession, settings: AuthSettings, mail_id: uuid.UUID, now: datetime
) -> RenderedMail | None:
    """The message of a pending mail, with a freshly minted link; `MailGone` when it is not pending.

    None when its renderer finds it no longer wanted: the mail is then cancelled (the caller commits that
    and answers 410 too).
    """
    repo = MailRepository(session)
    mail = await repo.lock(mail_id)
    if mail is None or mail.status != PENDING:
        raise MailGone()
    renderer = RENDERERS.get(mail.kind)
    if renderer is None or mail.renders >= MAX_RENDERS:
        reason = "no renderer for this kind" if renderer is None else "rendered too often"
        log.error("mail_not_renderable", mail_id=str(mail.id), kind=mail.kind, reason=reason)
        await _finish(session, mail, FAILED, now, failure=reason)
        return None
    rendered = await renderer(session, settings, mail, now)
    if rendered is None:
        await _finish(session, mail, CANCELLED, now)
        return None
    mail.renders += 1
    mail.rendered_at = now
    await session.flush()
    log.info("mail_rendered", mail_id=str(mail.id), kind=mail.kind, renders=mail.renders)
    return rendered


async def mark_sent(session: AsyncSession, mail_id: uuid.UUID, now: datetime) -> None:
    """The worker handed the mail to the SMTP server. Idempotent; a mail that ended otherwise stays so."""
    mail = await _locked(session, mail_id)
    if mail.status == PENDING:
        await _finish(session, mail, SENT, now)


async def mark_failed(session: AsyncSession, mail_id: uuid.UUID, reason: str, now: datetime) -> None:
    """The worker gave up on the mail; its unused link is discarded (it was never delivered)."""
    mail = await _locked(session, mail_id)
    if mail.status == PENDING:
        await EmailTokenRepository(session).discard_unused_of_mail(mail.id)
        await _finish(session, mail, FAILED, now, failure=reason)


async def pending(session: AsyncSession, now: datetime, *, limit: int) -> list[uuid.UUID]:
    """Mails still pending a while after they were queued, for the worker's cron to queue again."""
    return await MailRepository(session).pending_ids(
        queued_before=now - PENDING_AFTER, queued_after=now - PENDING_FOR_AT_MOST, limit=limit
    )


async def _locked(session: AsyncSession, mail_id: uuid.UUID) -> OutboundMail:
    mail = await MailRepository(session).lock(mail_id)
    if mail is None:
        raise MailNotFound()
    return mail


async def _finish(
    session: AsyncSession, mail: OutboundMail, status: str, now: datetime, *, failure: str | None = None
) -> None:
    mail.status = status
    mail.finished_at = now
    mail.failure = failure
    await session.flush()
    MAIL_OUTCOMES.labels(mail.kind, status).inc()
    log.info("mail_finished", mail_id=str(mail.id), kind=mail.kind, outcome=status, failure=failure)
