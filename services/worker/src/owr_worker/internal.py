"""Clients for the internal APIs the worker calls: auth (service tokens), keys and usage.

Each call carries a service token for the called service's audience (obtained with the worker's
client credentials, cached until shortly before it expires, fetched again once on a 401), the job's
`traceparent` and `X-Request-ID`. Bodies are the shared wire models (`owr_shared.wire.keys`,
`owr_shared.wire.usage`), sent with money as exact JSON numbers and parsed back into the same models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from owr_shared.logging import get_logger
from owr_shared.wire import codec
from owr_shared.wire.alerts import KeyStatusBatch, KeyStatusItem
from owr_shared.wire.auth import ServiceTokenRequest, ServiceTokenResponse
from owr_shared.wire.keys import (
    DueClaim,
    DueKey,
    InvalidFilter,
    RevealBatch,
    RevealedBatch,
    RevealedItem,
    StatusBatch,
    StatusBatchResult,
    StatusItem,
    StatusReport,
)
from owr_shared.wire.usage import (
    AccountKeysReport,
    ActivityReport,
    CompactionRequest,
    CompactionResult,
    CreditsReport,
    RetentionRequest,
    SnapshotBatch,
    SnapshotItem,
)
from owr_worker.batching import Batcher, BatchPolicy
from owr_worker.tracing import outgoing_headers

log = get_logger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
M = TypeVar("M", bound=BaseModel)

KEYS_AUDIENCE = "owr-keys"
USAGE_AUDIENCE = "owr-usage"
# A token is replaced this long before it expires, so a slow call never carries an expired one.
TOKEN_MARGIN_SECONDS = 30.0


# The scopes the worker asks for, per audience (one token per audience serves every call to it). A client that
# needs a scope apart asks for a token of its own (`_InternalClient.scope`): usage's alert routes do
# (`alerts_client.py`, `alerts:deliver`), so a deployment that has not granted that scope yet still syncs.
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
    """Service tokens per audience (and scope) from `POST {auth}/internal/service-tokens` (client credentials)."""

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
        self._tokens: dict[tuple[str, str | None], _Token] = {}
        self._locks: dict[tuple[str, str | None], asyncio.Lock] = {}

    async def get(self, audience: str, scope: str | None = None) -> str:
        """A valid token for `audience` with `scope` (default: the audience's `AUDIENCE_SCOPES`); concurrent
        callers share one fetch."""
        slot = (audience, scope or AUDIENCE_SCOPES.get(audience))
        token = self._tokens.get(slot)
        if token is not None and token.expires_at > time.monotonic():
            return token.value
        lock = self._locks.setdefault(slot, asyncio.Lock())
        async with lock:
            token = self._tokens.get(slot)
            if token is not None and token.expires_at > time.monotonic():
                return token.value
            token = await self._fetch(*slot)
            self._tokens[slot] = token
            return token.value

    def invalidate(self, audience: str, value: str) -> None:
        """Forget `value` (refused by the service) unless a newer token already replaced it."""
        for slot, token in list(self._tokens.items()):
            if slot[0] == audience and token.value == value:
                del self._tokens[slot]

    async def _fetch(self, audience: str, scope: str | None) -> _Token:
        # Least privilege: a token for keys carries only keys' scopes, one for usage only usage's.
        request = ServiceTokenRequest(
            client_id=self._client_id, client_secret=self._client_secret, audience=audience, scope=scope
        )
        started = time.monotonic()
        try:
            async with self._session.post(
                self._url,
                data=codec.encode(request),
                headers={**outgoing_headers(), "Content-Type": "application/json"},
                timeout=self._timeout,
            ) as response:
                if response.status != 200:
                    raise _status_error("auth", response.status)
                answer = ServiceTokenResponse.model_validate(codec.loads(await response.read()))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _failure("auth", exc) from None
        except ValueError:  # unreadable JSON, or an answer that is not a service token (ValidationError)
            raise ServiceError("auth", "unreadable service-token answer", retryable=True) from None
        lifetime = float(answer.expires_in)
        # Keep it for at most half its life when it is short, so the margin never exceeds the lifetime.
        keep = max(0.0, lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 2))
        return _Token(value=answer.access_token, expires_at=started + keep)


class _InternalClient:
    """A service's `/internal` API with service tokens; one 401 fetches a new token and repeats the call.

    Calls made through `_batcher`s share one request with concurrent jobs' calls; `aclose()` sends what waits.
    """

    service = ""
    audience = ""
    # The scopes this client's token asks for; None: its audience's `AUDIENCE_SCOPES`.
    scope: str | None = None

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        tokens: ServiceTokens,
        *,
        timeout_seconds: float,
        batch: BatchPolicy | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._batch = batch
        self._batchers: list[Batcher[Any, Any]] = []

    def _batcher(
        self, name: str, send: Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT | BaseException]]]
    ) -> Batcher[ItemT, ResultT]:
        batcher: Batcher[ItemT, ResultT] = Batcher(name, send, self._batch, split=_refused)
        self._batchers.append(batcher)
        return batcher

    async def aclose(self) -> None:
        for batcher in self._batchers:
            await batcher.close()

    def _answer(self, model: type[M], body: Any, what: str) -> M:
        try:
            return model.model_validate(body)
        except ValidationError:
            raise ServiceError(self.service, f"unreadable {what} answer", retryable=True) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        only_set: bool = False,
        params: Mapping[str, str] | None = None,
        expect: Sequence[int] = (200, 204),
        tolerate: Sequence[int] = (),
    ) -> tuple[int, Any]:
        """(status, parsed body or None). Statuses in `tolerate` are returned; others outside `expect` raise.

        `only_set` sends only the fields the body was built with (a status report's "left out").
        """
        data = None if body is None else codec.encode(body, exclude_unset=only_set)
        for attempt in (1, 2):
            token = await self._tokens.get(self.audience, self.scope)
            headers = {**outgoing_headers(), "Authorization": f"Bearer {token}", "Accept": "application/json"}
            if data is not None:
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
                    return status, codec.loads(raw)
                except ValueError:
                    if status in tolerate:
                        return status, None
                    raise ServiceError(self.service, f"unreadable answer ({status})", retryable=True) from None
            raise _status_error(self.service, status)
        raise AssertionError("unreachable")  # pragma: no cover


def _refused(exc: BaseException) -> bool:
    """A batch refused for its content (4xx other than 401/429): worth sending its items one by one."""
    return isinstance(exc, ServiceError) and exc.status is not None and not exc.retryable and exc.status != 401


def _due_items(body: Any) -> list[DueKey]:
    items = body.get("items", []) if isinstance(body, dict) else []
    out = []
    for item in items:
        try:
            out.append(DueKey.model_validate(item))
        except ValidationError:
            continue
    return out


class KeysClient(_InternalClient):
    """keys' `/internal/keys/...` (scopes `keys:due`, `keys:reveal`, `keys:status`).

    `reveal` and `report_status` go through batchers: concurrent jobs share one call of keys' batch
    routes (`POST /internal/keys/reveal`, `POST /internal/keys/status`).
    """

    service = "keys"
    audience = KEYS_AUDIENCE

    @cached_property
    def _reveals(self) -> Batcher[str, RevealedItem | None]:
        return self._batcher("reveal", self.reveal_many)

    @cached_property
    def _reports(self) -> Batcher[tuple[str, StatusReport], bool]:
        return self._batcher("status", self.report_many)

    async def due(self, *, limit: int, invalid: str = "exclude") -> list[DueKey]:
        """Active keys due for a sync, never-synced first, then the oldest sync (at most `limit`); keys
        OpenRouter rejected are left out unless `invalid` is `only` or `include`. An unreadable item is
        skipped, not the whole list."""
        params = {"limit": str(limit), "invalid": invalid}
        _, body = await self._call("GET", "/internal/keys/due", params=params, expect=(200,))
        return _due_items(body)

    async def claim_due(self, *, limit: int, invalid: InvalidFilter = "exclude") -> list[DueKey]:
        """The next page of due keys, each workspace's first before anyone's second, leased to this scan
        (another scan gets other keys, the next claim the next page); a page shorter than `limit` is the
        last. An unreadable item is skipped, not the page."""
        request = DueClaim(limit=limit, invalid=invalid)
        _, body = await self._call("POST", "/internal/keys/due/claim", body=request, only_set=True, expect=(200,))
        return _due_items(body)

    async def reveal(self, key_id: str) -> RevealedItem | None:
        """The key's plaintext and workspace (an audited reveal); None when the key is gone or inactive."""
        return await self._reveals.submit(key_id)

    async def reveal_many(self, key_ids: Sequence[str]) -> list[RevealedItem | ServiceError | None]:
        """One call for several keys: per id its `RevealedItem`, None (gone or inactive), or an error."""
        request = RevealBatch.model_validate({"ids": list(key_ids)})
        _, body = await self._call("POST", "/internal/keys/reveal", body=request, expect=(200,))
        answer = self._answer(RevealedBatch, body, "reveal")
        found: dict[str, RevealedItem | ServiceError | None] = {str(item.id): item for item in answer.items}
        for gone in answer.unavailable:
            # An unreadable key is a 500 of the single route: retried, and logged by keys.
            found[str(gone.id)] = (
                ServiceError(self.service, "key unreadable", status=500, retryable=True)
                if gone.reason == "unreadable"
                else None
            )
        missing = ServiceError(self.service, "reveal answer without the key", retryable=True)
        return [found.get(key_id, missing) for key_id in key_ids]

    async def report_status(self, key_id: str, report: StatusReport) -> bool:
        """Send the sync's outcome; False when the key is gone. Fields not set on `report` are not sent."""
        return await self._reports.submit((key_id, report))

    async def report_many(self, reports: Sequence[tuple[str, StatusReport]]) -> list[bool | ServiceError]:
        """One call for several reports: per report True (applied or ignored as stale) or False (key gone)."""
        items = [StatusItem.model_validate({**r.model_dump(exclude_unset=True), "id": k}) for k, r in reports]
        request = StatusBatch(items=items)
        _, body = await self._call("POST", "/internal/keys/status", body=request, only_set=True, expect=(200,))
        answer = self._answer(StatusBatchResult, body, "status")
        outcome = {str(key_id): True for key_id in (*answer.applied, *answer.ignored)}
        outcome.update((str(key_id), False) for key_id in answer.not_found)
        missing = ServiceError(self.service, "status answer without the key", retryable=True)
        return [outcome.get(key_id, missing) for key_id, _ in reports]


class UsageClient(_InternalClient):
    """usage's `/internal/...` ingestion (scope `usage:ingest`) and retention (`usage:cleanup`).

    `store_snapshots` and `report_key_status` go through batchers: concurrent jobs' snapshots share one
    `POST /internal/snapshots`, their sync outcomes one `POST /internal/key-status`.
    """

    service = "usage"
    audience = USAGE_AUDIENCE

    @cached_property
    def _snapshots(self) -> Batcher[SnapshotItem, None]:
        return self._batcher("snapshots", self._post_snapshots)

    async def store_snapshots(self, items: Sequence[SnapshotItem]) -> None:
        """Store snapshots (idempotent upserts); each goes out with other jobs' in one call."""
        await asyncio.gather(*(self._snapshots.submit(item) for item in items))

    async def _post_snapshots(self, items: Sequence[SnapshotItem]) -> list[None]:
        await self._call("POST", "/internal/snapshots", body=SnapshotBatch(items=list(items)), expect=(200, 201))
        return [None] * len(items)

    @cached_property
    def _key_statuses(self) -> Batcher[KeyStatusItem, None]:
        return self._batcher("key_status", self._post_key_statuses)

    async def report_key_status(self, item: KeyStatusItem) -> None:
        """A sync's outcome for usage's key rules; it goes out with other jobs' in one call."""
        await self._key_statuses.submit(item)

    async def _post_key_statuses(self, items: Sequence[KeyStatusItem]) -> list[None]:
        await self._call("POST", "/internal/key-status", body=KeyStatusBatch(items=list(items)), expect=(200,))
        return [None] * len(items)

    async def store_credits(self, management_key_id: str, report: CreditsReport) -> None:
        await self._call("POST", f"/internal/accounts/{management_key_id}/credits", body=report)

    async def replace_keys(self, management_key_id: str, report: AccountKeysReport) -> None:
        await self._call("PUT", f"/internal/accounts/{management_key_id}/keys", body=report)

    async def replace_activity(self, management_key_id: str, report: ActivityReport) -> None:
        await self._call("PUT", f"/internal/accounts/{management_key_id}/activity", body=report)

    async def compact_snapshots(self, request: CompactionRequest) -> CompactionResult:
        """One batch of snapshot compaction (scope `usage:cleanup`)."""
        _, body = await self._call("POST", "/internal/snapshots/compaction", body=request, expect=(200,))
        return self._answer(CompactionResult, body, "compaction")

    async def apply_retention(self, before: date) -> Any:
        """The retention answer as usage gave it (the cron job's result)."""
        request = RetentionRequest(before=before)
        _, body = await self._call("POST", "/internal/retention", body=request, expect=(200, 204))
        return body
