"""An SMTP sink (aiosmtpd) for `make run` / `make demo` and the tests: it accepts every message and keeps it.

Each message is kept in `messages` and, when the sink has a directory, written there as one `.eml` file
(atomically: a reader never sees half a message); `on_message` hears of each. Nothing is relayed anywhere.
`python -m tools.mail_sink [DIR]` runs one on its own (port 1025).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

from tools.devinfra import DATA_DIR, free_port

MAIL_DIR = DATA_DIR / "mail"
DEFAULT_PORT = 1025

OnMessage = Callable[[EmailMessage, Path | None], None]


class MailSink:
    """`with MailSink(directory) as sink:` an SMTP server on `sink.url` until the block ends."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port or free_port()
        self.on_message = on_message
        self.messages: list[EmailMessage] = []
        self.refuse_with: int | None = None  # tests: answer every message with this code instead
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        if self.refuse_with is not None:
            return f"{self.refuse_with} refused by the test sink"
        content = bytes(envelope.content)
        mail = message_from_bytes(content, policy=policy.default)
        path = self._store(content) if self.directory is not None else None
        with self._lock:
            self.messages.append(mail)
        if self.on_message is not None:
            self.on_message(mail, path)
        return "250 OK: kept"

    def _store(self, content: bytes) -> Path:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{next(self._numbers):04d}.eml"
        path = self.directory / name
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(content)
        partial.replace(path)
        return path

    def start(self) -> Self:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def announce(mail: EmailMessage, path: Path | None) -> None:
    """Print where a message went (the dev stack's `on_message`)."""
    where = path if path is not None else "memory"
    print(f"mail to {mail['To']}: {mail['Subject']!r} -> {where}", flush=True)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m tools.mail_sink")
    parser.add_argument("directory", nargs="?", type=Path, default=MAIL_DIR)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    with MailSink(args.directory, port=args.port, on_message=announce) as sink:
        print(f"SMTP sink on {sink.url}, keeping mail in {args.directory}/ (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
