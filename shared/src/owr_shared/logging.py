"""structlog JSON logging with service, request and trace ids, and a last-line-of-defence redactor."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

from owr_shared.context import request_id_var, trace_id_var

# Patterns that must never leave the process in a log line, whatever code logged them.
_B64 = "A-Za-z0-9+/"
SECRET_PATTERNS = (
    re.compile(r"sk-or-[A-Za-z0-9_-]{8,}"),
    re.compile(r"owr[a-z]?_[A-Za-z0-9_-]{16,}"),
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # A PEM block (a private key above all), also when cut off before its END line.
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)"),
    # A bare DER key body in base64 (PKCS#8 Ed25519/Ed448/EC/RSA, SEC1 EC, PKCS#1 RSA): the PEM's inside.
    re.compile(rf"(?:MC4CAQ|MEcCAQ|MHcCAQ|MIG[{_B64}]AgEA|MII[{_B64}]{{3}}IBA)[{_B64}\\\n]{{8,}}={{0,2}}"),
    # A Standard Webhooks signing secret (a webhook channel's), whatever its length.
    re.compile(rf"whsec_[{_B64}_-]{{8,}}=*"),
    # Slack and Discord incoming-webhook URLs: the path is the credential.
    re.compile(r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/[^\s\"'<>]+"),
    re.compile(r"(?i)discord(?:app)?\.com/api/(?:v\d+/)?webhooks/[^\s\"'<>]+"),
    # A TOTP secret, in an otpauth:// URI or elsewhere as `secret=`.
    re.compile(r"(?i)(?<=[?&])secret=[A-Z2-7=]+"),
    # The base64 of 32 random bytes (a KEK, a pepper): 43 characters and one "=" of padding.
    re.compile(rf"(?<![{_B64}_-])[{_B64}_-]{{43}}=(?![{_B64}_=-])"),
)
# A key is sensitive when its name contains one of `_SECRET_SUBSTRINGS` (`client_secret`,
# `api_token_pepper`, `jwt_private_key`, `x-api-key`) or when its last word is one of `_SECRET_LAST_WORDS`
# (`refresh_token`, `api_key`, `keks`); `token_id`, `key_id` and `kek_version` end in other words: kept.
_SECRET_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "pepper",
    "private",
    "credential",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "api-key",
)
_SECRET_LAST_WORDS = frozenset({"token", "key", "kek", "keks", "dek", "deks", "jwt", "pem"})
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_SENSITIVE_CACHE: dict[str, bool] = {}
REDACTED = "***"
# A long unbroken run of token characters may be a key without its prefix (its 64 hex digits, say):
# scrubbed from upstream text that is stored and shown (never applied to log lines, which carry ids).
LONG_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,}")
# One cheap scan decides whether any secret pattern can match at all; most strings never do.
_MAYBE_SECRET = re.compile(
    rf"sk-or-|owr[a-z]?_|(?i:bearer|basic)\s|eyJ|-----BEGIN |MC4CAQ|MEcCAQ|MHcCAQ|MI[GI][{_B64}]|[{_B64}_-]{{43}}="
    r"|whsec_|(?i:hooks\.slack\.com|/webhooks/|secret=)"
)


def is_sensitive_key(name: object) -> bool:
    """Whether a field named `name` holds a secret (its value is then never logged)."""
    key = str(name).lower()
    known = _SENSITIVE_CACHE.get(key)
    if known is None:
        words = [w for w in _WORD_SPLIT.split(key) if w]
        known = any(part in key for part in _SECRET_SUBSTRINGS) or (bool(words) and words[-1] in _SECRET_LAST_WORDS)
        if len(_SENSITIVE_CACHE) < 4096:  # field names are few; never let odd input grow this
            _SENSITIVE_CACHE[key] = known
    return known


def redact_text(text: str) -> str:
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_value(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if is_sensitive_key(k) else redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value(v, depth + 1) for v in value]
    return value


def _redact_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: REDACTED if is_sensitive_key(key) else redact_value(value) for key, value in event_dict.items()}


def _add_request_context(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    trace_id = trace_id_var.get()
    if trace_id is not None:
        event_dict.setdefault("trace_id", trace_id)
    return event_dict


def _orjson_dumps(value: Any, **_kw: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _orjson_bytes(value: Any, **_kw: Any) -> bytes:
    return orjson.dumps(value, default=str)


class _Stdout:
    """A byte sink that writes to whatever `sys.stdout` is now, so a replaced stream (test capture) is followed."""

    def write(self, data: bytes) -> int:
        out = sys.stdout
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            return out.write(data.decode("utf-8", "replace"))
        written: int = buffer.write(data)
        return written

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Configure one redacting JSON pipeline for structlog and the standard library (uvicorn, arq, ...).

    structlog's own loggers render straight to bytes on stdout (no stdlib round trip: a request log
    line is on every request's path); stdlib records pass through the same processors via a formatter.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]

    def add_service(_l: Any, _n: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    if json:
        text_renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        bytes_renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_bytes)
    else:
        text_renderer = structlog.dev.ConsoleRenderer(colors=False)
        bytes_renderer = _encode_after(text_renderer)
    level_number = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, add_service, _redact_processor, bytes_renderer],
        logger_factory=structlog.BytesLoggerFactory(file=_Stdout()),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, add_service],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact_processor,
            text_renderer,
        ],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_number)
    for name in ("uvicorn", "uvicorn.error", "arq", "aiohttp"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access log is replaced by our own request log line, which carries the request id.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def _encode_after(renderer: Any) -> Any:
    def render(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> bytes:
        return str(renderer(logger, name, event_dict)).encode()

    return render


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at emit time, so a replaced stream (test capture) is followed."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
