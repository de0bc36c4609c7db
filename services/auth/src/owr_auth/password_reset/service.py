"""Password reset: a mail with a one-time link (30 minutes by default); the link sets a new password and
ends every session and API token, as a password change does.

A request answers the same (202, one body) whether or not the address has an account, and does the same
up to the lookup: the limits count the attempt first (per client address and per email address, known or
not), and the mail's job is queued in the background after the commit. A link is outdated by a later
password change, and the account's other reset links die when one works. Using a link proves the
mailbox, so it also verifies the address.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.email_tokens import service as email_tokens
from owr_auth.email_tokens.errors import InvalidLink, LinkExpired
from owr_auth.email_tokens.repository import EmailTokenRepository
from owr_auth.mail.compose import addressee, compose, lifetime, page_link
from owr_auth.mail.limits import AccountMailLimits
from owr_auth.mail.models import OutboundMail
from owr_auth.mail.outbox import queue_mail
from owr_auth.mail.queue import MailQueue
from owr_auth.notices import service as notices
from owr_auth.passwords.service import PasswordService, check_password_policy
from owr_auth.sessions.throttle import account_subject
from owr_auth.settings import AuthSettings
from owr_auth.users.normalize import canonical_email, normalize_email
from owr_auth.users.repository import UserRepository
from owr_auth.users.service import end_every_session
from owr_shared.logging import get_logger
from owr_shared.wire.mail import RenderedMail

log = get_logger(__name__)

PAGE = "/reset-password"


async def request_reset(
    session: AsyncSession, queue: MailQueue, limits: AccountMailLimits, *, email: str, ip: str
) -> None:
    """Queue a reset email when the address has an account; nothing the caller can tell apart otherwise."""
    canonical = canonical_email(email) or normalize_email(email)
    await limits.password_reset(ip=ip, account=account_subject(canonical))
    user = await UserRepository(session).get_by_email(canonical)
    if user is None:
        log.info("password_reset_requested", known=False)
        return
    await queue_mail(session, queue, kind="password_reset", recipient=user.email, user_id=user.id)
    log.info("password_reset_requested", known=True, user_id=str(user.id))


async def confirm(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    passwords: PasswordService,
    queue: MailQueue,
    *,
    token: str,
    new_password: str,
    now: datetime,
) -> None:
    """Set the new password with a reset link, once; then every session and API token of the account ends, and
    its address gets a notice (`password_changed`) once this commits.

    The policy is checked before the link is used (a refused password leaves the link working); a
    revocation that cannot be recorded (503) rolls everything back, the link's use included.
    """
    check_password_policy(new_password, field="new_password")
    used = await email_tokens.redeem(session, purpose="password_reset", token=token, now=now)
    user = await UserRepository(session).lock(used.user_id)
    if user is None:
        raise InvalidLink()
    if used.created_at < user.password_changed_at:
        # The password changed after this link was made: it may not undo that.
        raise LinkExpired()
    user.password_hash = await passwords.hash(new_password)
    user.password_changed_at = utcnow()
    if user.email_verified_at is None:
        user.email_verified_at = now
    await session.flush()
    await EmailTokenRepository(session).discard_unused_for_user(user.id, "password_reset")
    await notices.notify(session, queue, user, "password_changed")
    await end_every_session(session, redis, settings, user_id=user.id, reason="password_reset")
    log.info("password_reset", user_id=str(user.id))


async def render(
    session: AsyncSession, settings: AuthSettings, mail: OutboundMail, now: datetime
) -> RenderedMail | None:
    """The reset email, with a new link; None when the account is gone (or its address changed)."""
    user = await addressee(session, mail)
    if user is None:
        return None
    ttl = settings.password_reset_ttl_seconds
    token = await email_tokens.mint(
        session, user_id=user.id, purpose="password_reset", mail_id=mail.id, now=now, ttl_seconds=ttl
    )
    return compose(
        kind="password_reset",
        to=user.email,
        subject="Reset your password",
        paragraphs=[
            "Someone, hopefully you, asked to reset the password of your OpenRouter Watcher account.",
            "Choosing a new password signs you out everywhere and revokes your API tokens.",
        ],
        action="Choose a new password",
        link=page_link(settings, PAGE, token),
        closing=[
            f"The link works once, for {lifetime(ttl)}.",
            "If you did not ask for this, ignore this email: your password stays as it is.",
        ],
    )
