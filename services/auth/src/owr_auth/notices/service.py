"""Security notices: an email to the account's address when two-factor sign-in is turned on or off, new
recovery codes are made, the password is changed or reset, or the account is signed in to from a user agent
none of its sessions had (docs/decisions.md, "Security notices").

A notice is queued on the one mail path (`queue_mail`), in the transaction of the change it reports: a change
that rolls back sends nothing. It says what happened and when (UTC), and what to do if it was not the person:
links to the pages that request a password reset and list the sessions. It holds nothing secret: no code, no
token, no link that signs in or changes anything, no address (the sessions page shows those), and a device
only as a name from a fixed list (`owr_shared.user_agents`), never the client's own text. It goes to the
address on file, verified or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.mail.compose import addressee, compose, page_url
from owr_auth.mail.models import OutboundMail
from owr_auth.mail.outbox import queue_mail
from owr_auth.mail.queue import MailQueue
from owr_auth.mail.repository import MailRepository
from owr_auth.metrics import SECURITY_NOTICES_HELD
from owr_auth.sessions.models import RefreshTokenFamily
from owr_auth.sessions.repository import RefreshTokenRepository
from owr_auth.settings import AuthSettings
from owr_auth.users.models import User
from owr_shared.logging import get_logger
from owr_shared.user_agents import device
from owr_shared.wire.mail import RenderedMail

NoticeKind = Literal["mfa_enabled", "mfa_disabled", "recovery_codes_replaced", "password_changed", "new_sign_in"]

log = get_logger(__name__)

# Notices of one kind an account gets per hour: an address nobody verified can be registered by anyone, who
# could otherwise sign in again and again (or turn 2FA on and off) to flood its owner. Past it, the change
# still happens; only its notice is held (logged and counted), as the earlier ones told the same news.
NOTICES_PER_HOUR = 3

# The web app's pages a notice points to: ask for a reset link, and see the sessions and two-factor sign-in.
RESET_PAGE = "/forgot-password"
SECURITY_PAGE = "/security"

_RESET_NOW = "reset your password now (that signs out every session and revokes every API token of the account)"


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    happened: str  # completed by " on <date> at <time> UTC."
    meaning: str
    if_not_you: str


NOTICES: dict[NoticeKind, Notice] = {
    "mfa_enabled": Notice(
        "Two-factor sign-in was turned on",
        "Two-factor sign-in was turned on for your OpenRouter Watcher account",
        "Signing in now takes a code from the authenticator app that was set up, or one of its recovery codes.",
        f"If this was not you, someone else can use your account: {_RESET_NOW}. If you then cannot sign in"
        " without their code, ask the operator of this OpenRouter Watcher to turn two-factor sign-in off for you.",
    ),
    "mfa_disabled": Notice(
        "Two-factor sign-in was turned off",
        "Two-factor sign-in was turned off for your OpenRouter Watcher account",
        "Your password alone signs you in now.",
        f"If this was not you, someone else can use your account: {_RESET_NOW}, then turn two-factor sign-in"
        " on again on the Security page.",
    ),
    "recovery_codes_replaced": Notice(
        "New recovery codes were made",
        "New recovery codes for two-factor sign-in were made for your OpenRouter Watcher account",
        "The earlier recovery codes no longer work; only the new ones, shown once when they were made, do.",
        f"If this was not you, someone else can use your account and your authenticator codes: {_RESET_NOW},"
        " then turn two-factor sign-in off and on again with an authenticator app of your own.",
    ),
    "password_changed": Notice(
        "Your password was changed",
        "The password of your OpenRouter Watcher account was changed",
        "Every session of the account was signed out and every API token of it was revoked.",
        f"If this was not you, {_RESET_NOW}, and check two-factor sign-in on the Security page.",
    ),
    "new_sign_in": Notice(
        "New sign-in to your account",
        "Your OpenRouter Watcher account was signed in to from a device none of its sessions had used before ({device})",
        "The Security page lists every signed-in session, with the address it came from.",
        f"If this was not you, sign that session out on the Security page and {_RESET_NOW}.",
    ),
}


async def notify(
    session: AsyncSession, queue: MailQueue, user: User, kind: NoticeKind, *, about: RefreshTokenFamily | None = None
) -> None:
    """Queue the notice to the account's address in the caller's transaction (`about`: the new sign-in's session),
    unless the account had `NOTICES_PER_HOUR` of that kind in the last hour."""
    recent = await MailRepository(session).count_since(user_id=user.id, kind=kind, since=utcnow() - timedelta(hours=1))
    if recent >= NOTICES_PER_HOUR:
        SECURITY_NOTICES_HELD.labels(kind).inc()
        log.warning("security_notice_held", kind=kind, user_id=str(user.id), last_hour=recent)
        return
    await queue_mail(
        session, queue, kind=kind, recipient=user.email, user_id=user.id, subject_id=about.id if about else None
    )


async def render(
    session: AsyncSession, settings: AuthSettings, mail: OutboundMail, now: datetime
) -> RenderedMail | None:
    """The notice; None when the account is gone or its address changed (nothing else makes one unwanted)."""
    user = await addressee(session, mail)
    if user is None:
        return None
    kind = cast(NoticeKind, mail.kind)
    notice = NOTICES[kind]
    happened = notice.happened
    if kind == "new_sign_in":
        family = await RefreshTokenRepository(session).get_family(mail.subject_id) if mail.subject_id else None
        if family is None or family.user_id != user.id:
            return None
        happened = happened.format(device=device(family.user_agent))
    # When the change committed (the mail's row is written in its transaction), not when the worker sends.
    when = mail.created_at.astimezone(UTC).strftime("%Y-%m-%d at %H:%M UTC")
    return compose(
        kind=kind,
        to=user.email,
        subject=notice.subject,
        paragraphs=[
            f"{happened} on {when}.",
            notice.meaning,
            "If this was you, there is nothing to do.",
            notice.if_not_you,
        ],
        action="Reset your password",
        link=page_url(settings, RESET_PAGE),
        also=[("See your sessions and two-factor sign-in", page_url(settings, SECURITY_PAGE))],
        closing=[
            "This email goes to the address of the account for every change to its security, and cannot be turned"
            " off. It never asks for your password or a code, and none of its links signs you in.",
        ],
    )
