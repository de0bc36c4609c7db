"""Email over SMTP (aiosmtplib): plain text plus HTML, to one recipient at a time.

`SMTP_URL` is `smtp://[user:pass@]host:port[?starttls=true]` (STARTTLS after connecting) or
`smtps://[user:pass@]host:port` (TLS from the start). The URL holds a password, so it is a secret: it is
never logged, and an error names the server's answer class, never the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

Security = Literal["none", "starttls", "tls"]


class BadSmtpUrl(ValueError):
    """`SMTP_URL` cannot be used (the message never carries the URL: it may hold a password)."""


class MailFailed(Exception):
    """The server refused the message or could not be reached; `retryable` for the temporary cases."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise BadSmtpUrl("SMTP_URL must be smtp://host:port or smtps://host:port")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise BadSmtpUrl("SMTP_URL's port is not valid") from None
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    security: Security = "tls" if parts.scheme == "smtps" else "starttls" if starttls else "none"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return SmtpServer(parts.hostname, port, security, username, password)


def message(mail_from: str, to: str, subject: str, text: str, html: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="openrouter-watcher")
    mail.set_content(text)
    mail.add_alternative(html, subtype="html")
    return mail


async def send(server: SmtpServer, mail: EmailMessage, *, timeout_seconds: float = 10.0) -> None:
    """Send one message; `MailFailed` (retryable for timeouts, refused connections and 4xx replies)."""
    try:
        await aiosmtplib.send(
            mail,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.security == "tls",
            # STARTTLS when asked for; otherwise aiosmtplib's own choice (upgrade when the server offers it).
            start_tls=server.security == "starttls" or None,
            timeout=timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise MailFailed(f"the mail server answered {exc.code}", retryable=400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailFailed(f"the mail server could not be reached ({type(exc).__name__})", retryable=True) from None
