"""How a mail's renderer writes its message: plain text and the same in simple HTML, around its links.

A renderer is `async (session, settings, mail, now) -> RenderedMail | None`: it mints the link's one-time
token, when the mail has one (storing only its hash), and writes the message, or answers None when the mail
is no longer wanted (the mail is then cancelled). `owr_auth.mail.renderers` maps each kind to its renderer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.mail.models import OutboundMail
from owr_auth.settings import AuthSettings
from owr_auth.users.models import User
from owr_auth.users.repository import UserRepository
from owr_shared.wire.mail import MailKind, RenderedMail

Renderer = Callable[[AsyncSession, AuthSettings, OutboundMail, datetime], Awaitable[RenderedMail | None]]

PRODUCT = "OpenRouter Watcher"


async def addressee(session: AsyncSession, mail: OutboundMail) -> User | None:
    """The account a mail is for, while it exists and still has the address the mail was queued for."""
    user = await UserRepository(session).get(mail.user_id) if mail.user_id else None
    return user if user is not None and user.deleted_at is None and user.email == mail.recipient else None


def page_url(settings: AuthSettings, path: str) -> str:
    """`{PUBLIC_BASE_URL}{path}`: a page of the web app (DESIGN §12)."""
    return f"{settings.public_base_url}{path}"


def page_link(settings: AuthSettings, path: str, token: str) -> str:
    """`{PUBLIC_BASE_URL}{path}?token=…`: a page of the web app that uses an emailed token."""
    return f"{page_url(settings, path)}?{urlencode({'token': token})}"


def lifetime(seconds: int) -> str:
    """'30 minutes', '48 hours', '7 days': how long a link works, in words."""
    if seconds % 86400 == 0 and seconds > 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def compose(
    *,
    kind: MailKind,
    to: str,
    subject: str,
    paragraphs: Sequence[str],
    action: str,
    link: str,
    closing: Sequence[str] = (),
    also: Sequence[tuple[str, str]] = (),
) -> RenderedMail:
    """A message: paragraphs, the link under its action label (and any `also` links, `(action, link)`), closing
    paragraphs; text and HTML alike."""
    links = [(action, link), *also]
    text = "\n\n".join([*paragraphs, *(f"{a}:\n{u}" for a, u in links), *closing, f"-- {PRODUCT}"]) + "\n"
    html_paragraphs = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    html_links = "".join(f'<p><a href="{escape(u, quote=True)}">{escape(a)}</a></p>' for a, u in links)
    addresses = "<br>".join(escape(u) for _, u in links)
    html_closing = "".join(f"<p>{escape(p)}</p>" for p in closing)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>"
        f"{html_paragraphs}{html_links}"
        f"<p>If a link does not open, copy its address into your browser:<br>{addresses}</p>"
        f"{html_closing}<p>&mdash; {PRODUCT}</p></body></html>"
    )
    return RenderedMail(kind=kind, to=to, subject=subject, text=text, html=html)
