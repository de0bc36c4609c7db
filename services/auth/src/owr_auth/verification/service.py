"""Email verification: a mail with a one-time link (48 hours by default) at registration and on request.

An unverified account signs in and works as any other; what needs a verified address asks
`is_verified` (accepting an invitation, receiving alerts by email). Accounts made before verification
existed count as verified (migration 0005, docs/decisions.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.email_tokens import service as email_tokens
from owr_auth.email_tokens.errors import InvalidLink
from owr_auth.email_tokens.repository import EmailTokenRepository
from owr_auth.mail.compose import addressee, compose, lifetime, page_link
from owr_auth.mail.limits import AccountMailLimits
from owr_auth.mail.models import OutboundMail
from owr_auth.mail.outbox import queue_mail
from owr_auth.mail.queue import MailQueue
from owr_auth.settings import AuthSettings
from owr_auth.users.models import User
from owr_auth.users.repository import UserRepository
from owr_auth.verification.errors import AlreadyVerified
from owr_shared.logging import get_logger
from owr_shared.wire.mail import RenderedMail

log = get_logger(__name__)

PAGE = "/verify-email"


async def is_verified(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the account exists and its email address is verified (what invitations and alerts need)."""
    user = await UserRepository(session).get(user_id)
    return user is not None and user.deleted_at is None and user.email_verified_at is not None


async def send_verification(session: AsyncSession, queue: MailQueue, user: User) -> None:
    """Queue a verification email to the user's address (sent once the caller's transaction commits)."""
    await queue_mail(session, queue, kind="verify_email", recipient=user.email, user_id=user.id)


async def resend(session: AsyncSession, queue: MailQueue, limits: AccountMailLimits, user: User) -> None:
    """Another verification email, within the account's limit (429 past it); 409 once verified."""
    if user.email_verified_at is not None:
        raise AlreadyVerified()
    await limits.verification(user.id)
    await send_verification(session, queue, user)


async def verify(session: AsyncSession, *, token: str, now: datetime) -> None:
    """Use a verification link: the account's address is verified, and its other verification links die."""
    used = await email_tokens.redeem(session, purpose="verify_email", token=token, now=now)
    user = await UserRepository(session).lock(used.user_id)
    if user is None:
        raise InvalidLink()
    if user.email_verified_at is None:
        user.email_verified_at = now
        log.info("email_verified", user_id=str(user.id))
    await EmailTokenRepository(session).discard_unused_for_user(user.id, "verify_email")


async def render(
    session: AsyncSession, settings: AuthSettings, mail: OutboundMail, now: datetime
) -> RenderedMail | None:
    """The verification email, with a new link; None when there is nothing to verify any more."""
    user = await addressee(session, mail)
    if user is None or user.email_verified_at is not None:
        return None
    ttl = settings.email_verification_ttl_seconds
    token = await email_tokens.mint(
        session, user_id=user.id, purpose="verify_email", mail_id=mail.id, now=now, ttl_seconds=ttl
    )
    return compose(
        kind="verify_email",
        to=user.email,
        subject="Verify your email address",
        paragraphs=[
            "Welcome to OpenRouter Watcher.",
            "Please confirm that this is your email address. Until you do, you can use your account,"
            " but you cannot join a team or receive alerts.",
        ],
        action="Verify my email address",
        link=page_link(settings, PAGE, token),
        closing=[
            f"The link works once, for {lifetime(ttl)}. If it has expired, sign in and ask for a new one.",
            "If you did not create an account, ignore this email: nothing happens without the link.",
        ],
    )
