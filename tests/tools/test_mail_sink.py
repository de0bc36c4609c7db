"""The SMTP sink `make run` / `make demo` start when SMTP_URL is unset: every message kept as one .eml file, and
the worker pointed at it."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

from owr_worker.mail import message, parse_smtp_url, send
from tools.devstack import Ports, system_specs
from tools.mail_sink import MailSink


async def test_each_message_is_kept_as_an_eml_file(tmp_path: Path) -> None:
    heard: list[tuple[str, Path | None]] = []
    with MailSink(tmp_path / "mail", on_message=lambda mail, path: heard.append((str(mail["Subject"]), path))) as sink:
        for n in (1, 2):
            mail = message("w@example.com", "ops@example.com", f"Alert {n}", f"text {n}", f"<p>html {n}</p>")
            await send(parse_smtp_url(sink.url), mail)
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    assert not list((tmp_path / "mail").glob("*.part"))
    assert [message_from_bytes(f.read_bytes())["Subject"] for f in files] == ["Alert 1", "Alert 2"]
    assert heard == [("Alert 1", files[0]), ("Alert 2", files[1])]
    assert all(isinstance(m, EmailMessage) for m in sink.messages)


def test_the_worker_is_pointed_at_the_sink() -> None:
    worker = next(spec for spec in system_specs(Ports(), smtp_url="smtp://127.0.0.1:1025") if spec.name == "worker")
    assert worker.env["SMTP_URL"] == "smtp://127.0.0.1:1025"
    assert worker.env["MAIL_FROM"]
    plain = next(spec for spec in system_specs(Ports()) if spec.name == "worker")
    assert "SMTP_URL" not in plain.env  # the environment's own SMTP_URL (or none) applies
