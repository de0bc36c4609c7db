"""Email through a real SMTP server (aiosmtpd): plain text plus HTML, and no password in any error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from owr_worker.mail import BadSmtpUrl, MailFailed, message, parse_smtp_url, send
from tests.support.mail import Inbox, smtp_server
from tests.support.ports import closed_port


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as sink:
        yield sink


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.com:2525")
    assert (plain.host, plain.port, plain.security, plain.username) == ("mail.example.com", 2525, "none", None)
    secure = parse_smtp_url("smtps://alerts%40example.com:p%40ss@smtp.example.com")
    assert (secure.port, secure.security, secure.username, secure.password) == (
        465,
        "tls",
        "alerts@example.com",
        "p@ss",
    )
    assert "p@ss" not in repr(secure)
    assert parse_smtp_url("smtp://h:587?starttls=true").security == "starttls"
    for bad in ("http://h", "smtp://", "smtp://user:pw-9f8e@h:99999"):
        with pytest.raises(BadSmtpUrl) as refused:
            parse_smtp_url(bad)
        assert "pw-9f8e" not in str(refused.value)


async def test_a_message_arrives_with_text_and_html(smtp_sink: tuple[Inbox, int]) -> None:
    inbox, port = smtp_sink
    mail = message("Watcher <w@example.com>", "alice@example.com", "Key invalid", "plain body", "<p>html body</p>")
    await send(parse_smtp_url(f"smtp://127.0.0.1:{port}"), mail)
    (received,) = inbox.messages
    assert received["Subject"] == "Key invalid"
    assert received["To"] == "alice@example.com"
    parts = {
        part.get_content_type(): bytes(part.get_payload(decode=True))
        for part in received.walk()
        if not part.is_multipart()
    }
    assert parts["text/plain"].strip() == b"plain body"
    assert parts["text/html"].strip() == b"<p>html body</p>"


async def test_refusals_and_outages_say_whether_to_retry(smtp_sink: tuple[Inbox, int]) -> None:
    inbox, port = smtp_sink
    mail = message("w@example.com", "alice@example.com", "s", "t", "<p>h</p>")
    inbox.refuse = 451
    with pytest.raises(MailFailed) as temporary:
        await send(parse_smtp_url(f"smtp://127.0.0.1:{port}"), mail)
    assert temporary.value.retryable
    inbox.refuse = 550
    with pytest.raises(MailFailed) as permanent:
        await send(parse_smtp_url(f"smtp://127.0.0.1:{port}"), mail)
    assert not permanent.value.retryable
    with pytest.raises(MailFailed) as away:
        await send(parse_smtp_url(f"smtp://user:hunter2-secret@127.0.0.1:{closed_port()}"), mail, timeout_seconds=2)
    assert away.value.retryable
    assert "hunter2" not in str(away.value)
