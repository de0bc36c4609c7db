"""The OpenRouter API client (aiohttp): `/key`, `/credits`, `/keys`, `/activity`, `PATCH /keys/{hash}`, per
CONTRACT.md.

Every request waits for the shared rate limiter, asks the circuit breaker, carries the job's
`traceparent` and the key as a Bearer token, and is retried in place (full-jitter backoff,
`Retry-After` honoured up to the cap) on 429, 5xx and timeouts. Bodies are parsed into the shared
wire models (`owr_shared.wire.openrouter`: money as `Decimal`, unknown fields ignored, quirks handled).
Errors become typed exceptions whose messages are safe to store: they are built from the status and
the upstream `error.message` only (never from request headers), with anything key-like scrubbed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from owr_shared.logging import LONG_TOKEN, get_logger, redact_text
from owr_shared.wire import codec
from owr_shared.wire.openrouter import AccountKey, ActivityRow, Credits, KeyInfo
from owr_worker.backoff import parse_retry_after, retry_delay
from owr_worker.circuit import CircuitBreaker, CircuitOpenError
from owr_worker.gate import UpstreamGate
from owr_worker.metrics import OPENROUTER_DURATION, OPENROUTER_REQUESTS
from owr_worker.ratelimit import RateLimiter
from owr_worker.tracing import outgoing_headers

log = get_logger(__name__)

T = TypeVar("T")

KEYS_PAGE_SIZE = 100  # OpenRouter's fixed page size for GET /keys
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_MESSAGE_CHARS = 300
USER_AGENT = "openrouter-watcher/0.1"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_HASH = re.compile(r"[0-9A-Za-z_-]{1,256}")


# --- errors -------------------------------------------------------------------------------------------


class OpenRouterError(Exception):
    """A request to OpenRouter did not give a usable answer. `str(exc)` is safe to store and show."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class KeyRejected(OpenRouterError):
    """401: unknown, revoked, disabled or expired key. The key is marked invalid."""


class NotManagementKey(OpenRouterError):
    """403: the endpoint needs a management key."""


class PaymentRequired(OpenRouterError):
    """402: out of credits or over the key's limit; retried only when OpenRouter sent `Retry-After`."""


class RateLimited(OpenRouterError):
    """429: slow down; `retry_after` in seconds when OpenRouter said."""


class UpstreamUnavailable(OpenRouterError):
    """5xx (Cloudflare's 520-524 included), a timeout, a broken connection or an unreadable body."""


class UnexpectedResponse(OpenRouterError):
    """Any other status (400, 404, a redirect): retrying the same request would not help."""


class CircuitOpen(OpenRouterError):
    """The shared circuit breaker is open: the request was not sent."""


# --- answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed(Generic[T]):
    """An answer and the time OpenRouter gave it (its `Date` header; our clock when missing)."""

    data: T
    observed_at: datetime


# --- helpers ------------------------------------------------------------------------------------------


def observed_at_from(headers: Mapping[str, str], *, now: Callable[[], datetime] | None = None) -> datetime:
    """The response's `Date` header as an aware UTC datetime, falling back to the local clock."""
    value = headers.get("Date")
    if value:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return now() if now is not None else datetime.now(UTC)


def scrub(text: str, *secrets: str) -> str:
    """Make upstream text safe to store: no key (given or key-like), no control characters, bounded."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = LONG_TOKEN.sub("***", redact_text(text))
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _upstream_message(body: bytes) -> str | None:
    """`error.message` of an OpenRouter error body, or None for HTML pages and other bodies."""
    try:
        parsed = codec.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return None


def error_for(status: int, body: bytes, retry_after: float | None, api_key: str) -> OpenRouterError:
    """The typed exception for a non-2xx answer; the message holds the status and a scrubbed upstream message."""
    upstream = _upstream_message(body)
    detail = f": {scrub(upstream, api_key)}" if upstream else ""
    if status == 401:
        return KeyRejected(f"OpenRouter rejected the key (401){detail}", status=status)
    if status == 403:
        return NotManagementKey(f"OpenRouter refused the request (403){detail}", status=status)
    if status == 402:
        return PaymentRequired(f"OpenRouter: payment required (402){detail}", status=status, retry_after=retry_after)
    if status == 429:
        return RateLimited(f"OpenRouter rate limit (429){detail}", status=status, retry_after=retry_after)
    if status >= 500:
        # Cloudflare's 52x pages are HTML: only the status is worth keeping.
        return UpstreamUnavailable(f"OpenRouter unavailable ({status}){detail}", status=status, retry_after=retry_after)
    return UnexpectedResponse(f"OpenRouter answered {status}{detail}", status=status)


async def _read_body(response: aiohttp.ClientResponse) -> bytes:
    """The body, refusing more than MAX_BODY_BYTES (a broken proxy must not exhaust memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise UpstreamUnavailable("OpenRouter answer too large", status=response.status)
        chunks.append(chunk)
    return b"".join(chunks)


# --- client -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """In-place retries of one request: `attempts` in all, waits from full jitter between base and cap."""

    attempts: int = 3
    base_seconds: float = 0.5
    cap_seconds: float = 10.0


class OpenRouterClient:
    """One instance per worker process, sharing the process's `aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout_seconds: float,
        limiter: RateLimiter | None = None,
        circuit: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._limiter = limiter
        self._circuit = circuit
        # Both on one Redis: their two decisions before a request are one call.
        self._gate = UpstreamGate(circuit, limiter) if circuit is not None and limiter is not None else None
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    async def get_key(self, api_key: str) -> Observed[KeyInfo]:
        """`GET /key`: the key's limits, usage windows and kind. Any valid key may call it."""
        body, observed_at = await self._get("/key", "/key", api_key)
        return Observed(_model(KeyInfo, _data(body)), observed_at)

    async def get_credits(self, api_key: str) -> Observed[Credits]:
        """`GET /credits`: the account's credits and usage (management key)."""
        body, observed_at = await self._get("/credits", "/credits", api_key)
        return Observed(_model(Credits, _data(body)), observed_at)

    async def list_keys(self, api_key: str, *, include_disabled: bool = True) -> Observed[list[AccountKey]]:
        """Every key of the account (management key): `GET /keys` paged by `offset` until a short page.

        `observed_at` is the first page's time. Rows that cannot be read are skipped and logged.
        """
        rows: list[AccountKey] = []
        first_seen: datetime | None = None
        offset = 0
        while True:
            params = {"offset": str(offset), "include_disabled": "true" if include_disabled else "false"}
            body, observed_at = await self._get("/keys", "/keys", api_key, params)
            first_seen = first_seen or observed_at
            page = _rows(body)
            rows.extend(_models(AccountKey, page, "keys"))
            if len(page) < KEYS_PAGE_SIZE:
                return Observed(rows, first_seen)
            offset += len(page)

    async def get_activity(
        self, api_key: str, *, api_key_hash: str | None = None, day: date | None = None
    ) -> Observed[list[ActivityRow]]:
        """`GET /activity` (management key): the last 30 completed UTC days, or one `day`, per model."""
        params: dict[str, str] = {}
        if api_key_hash is not None:
            params["api_key_hash"] = api_key_hash
        if day is not None:
            params["date"] = day.isoformat()
        body, observed_at = await self._get("/activity", "/activity", api_key, params)
        return Observed(_models(ActivityRow, _rows(body), "activity"), observed_at)

    async def patch_key(self, api_key: str, key_hash: str, changes: Mapping[str, Any]) -> Observed[AccountKey]:
        """`PATCH /keys/{hash}` (management key): `name`, `disabled`, `limit`, `limit_reset`,
        `include_byok_in_limit`; the key as OpenRouter now has it. The same body twice changes nothing more."""
        if not _HASH.fullmatch(key_hash):
            raise UnexpectedResponse("not an OpenRouter key hash")
        body, observed_at = await self._get("/keys/{hash}", f"/keys/{key_hash}", api_key, method="PATCH", json=changes)
        return Observed(_model(AccountKey, _data(body)), observed_at)

    async def _get(
        self,
        endpoint: str,
        path: str,
        api_key: str,
        params: Mapping[str, str] | None = None,
        *,
        method: str = "GET",
        json: Mapping[str, Any] | None = None,
    ) -> tuple[Any, datetime]:
        """One logical request: limiter, circuit and in-place retries around `_send`."""
        policy = self._retry
        attempt = 1
        while True:
            try:
                verdict = await self._admit()
            except CircuitOpenError:
                raise CircuitOpen("OpenRouter unavailable (circuit open); retrying") from None
            try:
                result = await self._send(endpoint, path, api_key, params, method, json)
            except UpstreamUnavailable as exc:
                if self._circuit is not None:
                    await self._circuit.record_failure()
                error: OpenRouterError = exc
            except RateLimited as exc:
                error = exc  # neither a success nor a failure for the circuit: OpenRouter is up
            except PaymentRequired as exc:
                await self._record_success(verdict)
                if exc.retry_after is None:
                    raise
                error = exc
            except OpenRouterError:
                await self._record_success(verdict)  # 401/403/4xx: OpenRouter answered, so it is up
                raise
            else:
                await self._record_success(verdict)
                return result
            if attempt >= policy.attempts:
                raise error
            if error.retry_after is not None and error.retry_after > policy.cap_seconds:
                # A long wait is the job's business (arq Retry), not a held worker slot's.
                raise error
            delay = retry_delay(
                attempt, base=policy.base_seconds, cap=policy.cap_seconds, retry_after=error.retry_after
            )
            log.info("openrouter_retry", endpoint=endpoint, status=error.status, attempt=attempt, delay=round(delay, 3))
            await self._sleep(delay)
            attempt += 1

    async def _admit(self) -> int | None:
        """The circuit's verdict (raises `CircuitOpenError`) and the limiter's slot, waited for."""
        if self._gate is not None:
            return await self._gate.admit()
        verdict = await self._circuit.before_request() if self._circuit is not None else None
        if self._limiter is not None:
            await self._limiter.acquire()
        return verdict

    async def _record_success(self, verdict: int | None) -> None:
        if self._circuit is not None:
            await self._circuit.record_success(verdict)

    async def _send(
        self,
        endpoint: str,
        path: str,
        api_key: str,
        params: Mapping[str, str] | None,
        method: str = "GET",
        json: Mapping[str, Any] | None = None,
    ) -> tuple[Any, datetime]:
        """One HTTP exchange; returns the parsed body and `observed_at` or raises a typed error."""
        headers = {
            **outgoing_headers(with_request_id=False),
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        data = None
        if json is not None:
            headers["Content-Type"] = "application/json"
            data = codec.dumps(json)
        start = time.perf_counter()
        status_label = "error"
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # never carry the key to another location
            ) as response:
                status_label = str(response.status)
                body = await _read_body(response)
                if not 200 <= response.status < 300:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise error_for(response.status, body, retry_after, api_key)
                try:
                    parsed = codec.loads(body)
                except ValueError:
                    raise UpstreamUnavailable(
                        f"OpenRouter sent an unreadable answer ({response.status})", status=response.status
                    ) from None
                return parsed, observed_at_from(response.headers)
        except TimeoutError:
            status_label = "timeout"
            raise UpstreamUnavailable("OpenRouter did not answer in time (timeout)") from None
        except aiohttp.ClientError as exc:
            # The exception text may hold the URL; the type alone is enough and always safe.
            status_label = "error"
            raise UpstreamUnavailable(f"OpenRouter unreachable ({type(exc).__name__})") from None
        finally:
            OPENROUTER_REQUESTS.labels(endpoint, status_label).inc()
            OPENROUTER_DURATION.labels(endpoint).observe(time.perf_counter() - start)


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise UpstreamUnavailable("OpenRouter sent an answer without data")
    return body["data"]


def _rows(body: Any) -> list[Any]:
    data = _data(body)
    if not isinstance(data, list):
        raise UpstreamUnavailable("OpenRouter sent an answer without a list of rows")
    return data


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError:
        # Pydantic's message would quote the input; the model name is all a user needs.
        raise UpstreamUnavailable(f"OpenRouter sent an unreadable {model.__name__}") from None


def _models(model: type[M], rows: list[Any], what: str) -> list[M]:
    """Validate each row alone: one odd row is skipped (and logged), not the whole answer."""
    out: list[M] = []
    skipped = 0
    for row in rows:
        try:
            out.append(model.model_validate(row))
        except ValidationError:
            skipped += 1
    if skipped:
        log.warning("openrouter_rows_skipped", what=what, skipped=skipped, kept=len(out))
    return out
