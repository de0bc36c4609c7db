"""Clients for the internal APIs the worker calls: auth (service tokens), keys and usage.

Each call carries a service token for the called service's audience (obtained with the worker's
client credentials, cached until shortly before it expires, fetched again once on a 401), the job's
`traceparent` and `X-Request-ID`. Bodies go out with money as exact JSON numbers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import aiohttp

from owr_shared.logging import get_logger
from owr_worker import encoding
from owr_worker.batching import Batcher, BatchPolicy
from owr_worker.tracing import outgoing_headers

log = get_logger(__name__)

KEYS_AUDIENCE = "owr-keys"
USAGE_AUDIENCE = "owr-usage"
# A token is replaced this long before it expires, so a slow call never carries an expired one.
TOKEN_MARGIN_SECONDS = 30.0


# The scopes the worker asks for, per audience (one token per audience serves every call to it).
AUDIENCE_SCOPES = {"owr-keys": "keys:due keys:reveal keys:status", "owr-usage": "usage:ingest usage:cleanup"}


class ServiceError(Exception):
    """An internal call failed. `retryable` for 5xx, 429, timeouts and refused connections."""

    def __init__(self, service: str, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.retryable = retryable


def _failure(service: str, exc: BaseException) -> ServiceError:
    if isinstance(exc, TimeoutError):
        return ServiceError(service, "timeout", retryable=True)
    return ServiceError(service, f"unreachable ({type(exc).__name__})", retryable=True)


def _status_error(service: str, status: int) -> ServiceError:
    return ServiceError(service, f"answered {status}", status=status, retryable=status >= 500 or status == 429)


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic()


class ServiceTokens:
    """Service tokens per audience from `POST {auth}/internal/service-tokens` (client credentials)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth_url: str,
        *,
        client_id: str,
        client_secret: str,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._url = auth_url.rstrip("/") + "/internal/service-tokens"
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, audience: str) -> str:
        """A valid token for `audience`; concurrent callers share one fetch."""
        token = self._tokens.get(audience)
        if token is not None and token.expires_at > time.monotonic():
            return token.value
        lock = self._locks.setdefault(audience, asyncio.Lock())
        async with lock:
            token = self._tokens.get(audience)
            if token is not None and token.expires_at > time.monotonic():
                return token.value
            token = await self._fetch(audience)
            self._tokens[audience] = token
            return token.value

    def invalidate(self, audience: str, value: str) -> None:
        """Forget `value` (refused by the service) unless a newer token already replaced it."""
        token = self._tokens.get(audience)
        if token is not None and token.value == value:
            del self._tokens[audience]

    async def _fetch(self, audience: str) -> _Token:
        # Least privilege: a token for keys carries only keys' scopes, one for usage only usage's.
        body = {"client_id": self._client_id, "client_secret": self._client_secret, "audience": audience}
        if audience in AUDIENCE_SCOPES:
            body["scope"] = AUDIENCE_SCOPES[audience]
        started = time.monotonic()
        try:
            async with self._session.post(
                self._url,
                data=encoding.dumps(body),
                headers={**outgoing_headers(), "Content-Type": "application/json"},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise _status_error("auth", response.status)
                payload = encoding.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _failure("auth", exc) from None
        except ValueError:
            raise ServiceError("auth", "unreadable service-token answer", retryable=True) from None
        try:
            value = str(payload["access_token"])
            lifetime = float(payload["expires_in"])
        except (KeyError, TypeError, ValueError):
            raise ServiceError("auth", "unreadable service-token answer", retryable=True) from None
        # Keep it for at most half its life when it is short, so the margin never exceeds the lifetime.
        keep = max(0.0, lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 2))
        return _Token(value=value, expires_at=started + keep)


class _InternalClient:
    """A service's `/internal` API with service tokens; one 401 fetches a new token and repeats the call."""

    service = ""
    audience = ""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, tokens: ServiceTokens, *, timeout_seconds: float
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        expect: Sequence[int] = (200, 204),
        tolerate: Sequence[int] = (),
    ) -> tuple[int, Any]:
        """(status, parsed body or None). Statuses in `tolerate` are returned; others outside `expect` raise."""
        for attempt in (1, 2):
            token = await self._tokens.get(self.audience)
            headers = {**outgoing_headers(), "Authorization": f"Bearer {token}", "Accept": "application/json"}
            data = None
            if body is not None:
                data = encoding.dumps(body)
                headers["Content-Type"] = "application/json"
            try:
                async with self._session.request(
                    method,
                    self._base_url + path,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    raw = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _failure(self.service, exc) from None
            if status == 401 and attempt == 1:
                # The token may have been signed with a key since withdrawn, or expired in flight.
                self._tokens.invalidate(self.audience, token)
                continue
            if status in expect or status in tolerate:
                if not raw:
                    return status, None
                try:
                    return status, encoding.loads(raw)
                except ValueError:
                    if status in tolerate:
                        return status, None
                    raise ServiceError(self.service, f"unreadable answer ({status})", retryable=True) from None
            raise _status_error(self.service, status)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class DueKey:
    id: str
    workspace_id: str


@dataclass(frozen=True, slots=True)
class Revealed:
    """The plaintext key and the workspace it belongs to (keys' reveal answer carries both)."""

    key: str
    workspace_id: str

    def __repr__(self) -> str:
        return f"Revealed(key='***', workspace_id={self.workspace_id!r})"


def _refused(exc: BaseException) -> bool:
    """A batch refused for its content (4xx other than 401/429): worth sending its items one by one."""
    return isinstance(exc, ServiceError) and exc.status is not None and not exc.retryable and exc.status != 401


class KeysClient(_InternalClient):
    """keys' `/internal/keys/...` (scopes `keys:due`, `keys:reveal`, `keys:status`).

    `reveal` and `report_status` go through batchers: concurrent jobs share one call of keys' batch
    routes (`POST /internal/keys/reveal`, `POST /internal/keys/status`). `aclose()` sends what waits.
    """

    service = "keys"
    audience = KEYS_AUDIENCE

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: ServiceTokens,
        *,
        timeout_seconds: float,
        batch: BatchPolicy | None = None,
    ) -> None:
        super().__init__(session, base_url, tokens, timeout_seconds=timeout_seconds)
        self._reveals: Batcher[str, Revealed | None] = Batcher("reveal", self.reveal_many, batch, split=_refused)
        self._reports: Batcher[tuple[str, Mapping[str, Any]], bool] = Batcher(
            "status", self.report_many, batch, split=_refused
        )

    async def aclose(self) -> None:
        await self._reveals.close()
        await self._reports.close()

    async def due(self, *, limit: int, invalid: str = "exclude") -> list[DueKey]:
        """Active keys due for a sync, never-synced first, then the oldest sync (at most `limit`); keys
        OpenRouter rejected are left out unless `invalid` is `only` or `include`."""
        params = {"limit": str(limit), "invalid": invalid}
        _, body = await self._call("GET", "/internal/keys/due", params=params, expect=(200,))
        items = body.get("items", []) if isinstance(body, dict) else []
        out = []
        for item in items:
            try:
                out.append(DueKey(id=str(uuid.UUID(str(item["id"]))), workspace_id=str(item["workspace_id"])))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    async def reveal(self, key_id: str) -> Revealed | None:
        """The key's plaintext and workspace (an audited reveal); None when the key is gone or inactive."""
        return await self._reveals.submit(key_id)

    async def reveal_many(self, key_ids: Sequence[str]) -> list[Revealed | ServiceError | None]:
        """One call for several keys: per id its `Revealed`, None (gone or inactive), or an error."""
        _, body = await self._call("POST", "/internal/keys/reveal", body={"ids": list(key_ids)}, expect=(200,))
        found: dict[str, Revealed | ServiceError | None] = {}
        try:
            for item in body["items"]:
                found[str(item["id"])] = Revealed(key=str(item["key"]), workspace_id=str(item["workspace_id"]))
            for item in body["unavailable"]:
                reason = item["reason"]
                # An unreadable key is a 500 of the single route: retried, and logged by keys.
                found[str(item["id"])] = (
                    ServiceError(self.service, "key unreadable", status=500, retryable=True)
                    if reason == "unreadable"
                    else None
                )
        except (KeyError, TypeError):
            raise ServiceError(self.service, "unreadable reveal answer", retryable=True) from None
        missing = ServiceError(self.service, "reveal answer without the key", retryable=True)
        return [found.get(key_id, missing) for key_id in key_ids]

    async def report_status(self, key_id: str, report: Mapping[str, Any]) -> bool:
        """Send the sync's outcome (a `StatusReport`); False when the key is gone."""
        return await self._reports.submit((key_id, report))

    async def report_many(self, reports: Sequence[tuple[str, Mapping[str, Any]]]) -> list[bool | ServiceError]:
        """One call for several reports: per report True (applied or ignored as stale) or False (key gone)."""
        items = [{**report, "id": key_id} for key_id, report in reports]
        _, body = await self._call("POST", "/internal/keys/status", body={"items": items}, expect=(200,))
        outcome: dict[str, bool] = {}
        try:
            for name, known in (("applied", True), ("ignored", True), ("not_found", False)):
                for key_id in body[name]:
                    outcome[str(key_id)] = known
        except (KeyError, TypeError):
            raise ServiceError(self.service, "unreadable status answer", retryable=True) from None
        missing = ServiceError(self.service, "status answer without the key", retryable=True)
        return [outcome.get(key_id, missing) for key_id, _ in reports]


class UsageClient(_InternalClient):
    """usage's `/internal/...` ingestion (scope `usage:ingest`) and retention (`usage:cleanup`).

    `store_snapshots` goes through a batcher: concurrent jobs' snapshots share one `POST /internal/snapshots`.
    """

    service = "usage"
    audience = USAGE_AUDIENCE

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: ServiceTokens,
        *,
        timeout_seconds: float,
        batch: BatchPolicy | None = None,
    ) -> None:
        super().__init__(session, base_url, tokens, timeout_seconds=timeout_seconds)
        self._snapshots: Batcher[Mapping[str, Any], None] = Batcher(
            "snapshots", self._post_snapshots, batch, split=_refused
        )

    async def aclose(self) -> None:
        await self._snapshots.close()

    async def store_snapshots(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Store snapshots (idempotent upserts); each goes out with other jobs' in one call."""
        await asyncio.gather(*(self._snapshots.submit(item) for item in items))

    async def _post_snapshots(self, items: Sequence[Mapping[str, Any]]) -> list[None]:
        await self._call("POST", "/internal/snapshots", body={"items": list(items)}, expect=(200, 201))
        return [None] * len(items)

    async def store_credits(
        self, management_key_id: str, *, workspace_id: str, observed_at: datetime, total_credits: Any, total_usage: Any
    ) -> None:
        await self._call(
            "POST",
            f"/internal/accounts/{management_key_id}/credits",
            body={
                "workspace_id": workspace_id,
                "observed_at": observed_at,
                "total_credits": total_credits,
                "total_usage": total_usage,
            },
        )

    async def replace_keys(
        self, management_key_id: str, *, workspace_id: str, observed_at: datetime, keys: Sequence[Mapping[str, Any]]
    ) -> None:
        await self._call(
            "PUT",
            f"/internal/accounts/{management_key_id}/keys",
            body={"workspace_id": workspace_id, "observed_at": observed_at, "keys": list(keys)},
        )

    async def replace_activity(
        self,
        management_key_id: str,
        *,
        workspace_id: str,
        observed_at: datetime,
        api_key_hash: str,
        dates: Sequence[date],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        await self._call(
            "PUT",
            f"/internal/accounts/{management_key_id}/activity",
            body={
                "workspace_id": workspace_id,
                "observed_at": observed_at,
                "api_key_hash": api_key_hash,
                "dates": list(dates),
                "rows": list(rows),
            },
        )

    async def apply_retention(self, before: date) -> Any:
        _, body = await self._call("POST", "/internal/retention", body={"before": before}, expect=(200, 204))
        return body
