"""The services' real logging pipeline (JSON, redaction) captured from stdout, for leak tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog

from owr_shared.logging import configure_logging


class CapturedLogs:
    """Log lines written to stdout since capture started (structlog's and the standard library's)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._text = ""

    def getvalue(self) -> str:
        self._text += self._capsys.readouterr().out
        return self._text


@contextmanager
def captured_json_logs(capsys: pytest.CaptureFixture[str], service: str) -> Iterator[CapturedLogs]:
    """Configure logging as `service` does in production, capture it, and restore the previous setup."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_config = root.handlers[:], root.level, structlog.get_config()
    configure_logging(service, "DEBUG", json=True)
    capsys.readouterr()
    try:
        yield CapturedLogs(capsys)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_config)
