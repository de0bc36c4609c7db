"""The internal API clients: service tokens cached per audience and refreshed once on 401; exact money."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from owr_shared.wire import codec
from owr_shared.wire.keys import StatusReport
from owr_shared.wire.openrouter import KeyInfo
from owr_shared.wire.usage import ActivityReport, CreditsReport, SnapshotItem
from owr_worker.internal import KeysClient, ServiceError, ServiceTokens, UsageClient
from owr_worker.tracing import job_context
from tests.worker.conftest import KEY, Internal, Reply

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


CLIENT_SECRET = "worker-client-secret-for-tests"
AT = datetime(2026, 8, 23, 10, 15, 30, tzinfo=UTC)
WS = "2b0a7f61-8a1e-4a4e-9d55-0d7c4f3f2a10"
VALID = StatusReport(status="valid", last_synced_at=AT)
# Only the fields a report was built with go out: keys keeps the others as they are.
VALID_SENT = {"status": "valid", "last_synced_at": "2026-08-23T10:15:30+00:00"}


def snapshot_item(usage: str | int) -> SnapshotItem:
    info = KeyInfo(usage=Decimal(usage), usage_daily=Decimal(0))
    return SnapshotItem(key_id=uuid.uuid4(), workspace_id=WS, observed_at=AT, snapshot=info)


def sent(item: SnapshotItem) -> dict[str, Any]:
    """The item as the internal server decodes it: exact decimals, ISO times, string ids."""
    decoded: dict[str, Any] = codec.loads(codec.encode(item))
    return decoded


def clients(
    http: aiohttp.ClientSession, internal: Internal, secret: str = CLIENT_SECRET
) -> tuple[ServiceTokens, KeysClient, UsageClient]:
    tokens = ServiceTokens(http, internal.url, client_id="worker", client_secret=secret, timeout_seconds=2)
    return (
        tokens,
        KeysClient(http, internal.url, tokens, timeout_seconds=2),
        UsageClient(http, internal.url, tokens, timeout_seconds=2),
    )


async def test_token_is_fetched_once_per_audience_and_sent(http, internal):
    _tokens, keys, usage = clients(http, internal)
    key_id = internal.add_key(KEY)
    await keys.report_status(key_id, VALID)
    await keys.report_status(key_id, VALID)
    item = snapshot_item("1.5")
    await usage.store_snapshots([item])
    assert internal.tokens_issued == 2
    asked = [s.body for s in internal.requests("/internal/service-tokens")]
    assert [a["audience"] for a in asked] == ["owr-keys", "owr-usage"]
    assert all(a["client_id"] == "worker" for a in asked)
    # Least privilege: each audience's token carries that service's scopes only.
    # (usage's alert routes get a token of their own, `alerts:deliver` alone: test_deliveries.py.)
    assert [a["scope"] for a in asked] == ["keys:due keys:reveal keys:status", "usage:ingest usage:cleanup"]
    status_calls = internal.requests("/internal/keys/status")
    assert len(status_calls) == 2
    assert all(s.headers["Authorization"] == "Bearer tok-owr-keys-1" for s in status_calls)
    assert internal.snapshots == [sent(item)]
    assert internal.snapshots[0]["snapshot"]["usage"] == Decimal("1.5")


async def test_a_refused_token_is_replaced_once(http, internal):
    _, keys, _ = clients(http, internal)
    key_id = internal.add_key(KEY)
    await keys.report_status(key_id, VALID)
    internal.refuse_tokens.add("tok-owr-keys-1")
    await keys.report_status(key_id, VALID)
    assert internal.tokens_issued == 2
    assert len(internal.statuses[key_id]) == 2
    # A service that refuses every token: one refresh, then an error (not a loop).
    internal.refuse_tokens.update(f"tok-owr-keys-{n}" for n in range(1, 10))
    with pytest.raises(ServiceError) as caught:
        await keys.report_status(key_id, VALID)
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert internal.tokens_issued == 3


async def test_wrong_client_secret_is_an_error(http, internal):
    _, keys, _ = clients(http, internal, secret="wrong")
    with pytest.raises(ServiceError, match="auth: answered 401"):
        await keys.due(limit=10)


async def test_trace_and_request_id_are_forwarded(http, internal):
    _, keys, _ = clients(http, internal)
    internal.due = [
        {
            "id": "8d8ac610-566d-4ef0-9c22-186b2a5ed793",
            "workspace_id": WS,
            "kind": None,
            "status": "pending",
            "last_synced_at": None,
        }
    ]
    with job_context("x", traceparent=TRACEPARENT, request_id="req-42") as trace:
        due = await keys.due(limit=5)
    assert [str(d.id) for d in due] == ["8d8ac610-566d-4ef0-9c22-186b2a5ed793"]
    seen = internal.requests("/internal/keys/due")[0]
    assert seen.query == {"limit": "5", "invalid": "exclude"}
    assert seen.headers["traceparent"] == trace.traceparent
    assert seen.headers["X-Request-ID"] == "req-42"


async def test_reveal_gone_or_inactive_is_none(http, internal):
    _, keys, _ = clients(http, internal)
    key_id = internal.add_key(KEY, workspace_id=WS)
    revealed = await keys.reveal(key_id)
    assert revealed is not None
    assert revealed.key == KEY
    assert str(revealed.workspace_id) == WS
    assert KEY not in repr(revealed)
    assert internal.requests("/internal/keys/reveal")[0].body == {"ids": [key_id]}
    internal.unavailable[key_id] = "inactive"
    assert await keys.reveal(key_id) is None
    assert await keys.reveal("00000000-0000-0000-0000-000000000000") is None
    # A key keys cannot decrypt is its 500: retried, like the single route's answer.
    internal.unavailable[key_id] = "unreadable"
    with pytest.raises(ServiceError) as caught:
        await keys.reveal(key_id)
    assert caught.value.retryable


async def test_concurrent_calls_share_one_batch_and_each_gets_its_answer(http, internal):
    _, keys, usage = clients(http, internal)
    workspaces = [str(uuid.uuid4()) for _ in range(5)]
    ids = [internal.add_key(KEY + str(n), workspace_id=workspaces[n]) for n in range(5)]
    gone = "00000000-0000-0000-0000-000000000000"
    revealed = await asyncio.gather(*(keys.reveal(i) for i in [*ids, gone]))
    assert [r.key if r else None for r in revealed] == [KEY + str(n) for n in range(5)] + [None]
    assert [str(r.workspace_id) if r else None for r in revealed] == [*workspaces, None]
    assert await asyncio.gather(*(keys.report_status(i, VALID) for i in [*ids, gone])) == [
        *[True] * 5,
        False,
    ]
    items = [snapshot_item(n) for n in range(5)]
    await asyncio.gather(*(usage.store_snapshots([item]) for item in items))
    assert len(internal.requests("/internal/keys/reveal")) == 1
    assert len(internal.requests("/internal/keys/status")) == 1
    assert [len(s.body["items"]) for s in internal.requests("/internal/snapshots")] == [5]
    assert internal.snapshots == [sent(item) for item in items]
    assert all(internal.statuses[i] == [VALID_SENT] for i in ids)


async def test_a_refused_batch_is_sent_again_item_by_item(http, internal):
    _, _, usage = clients(http, internal)

    def refuse_bad(seen):
        if any(item["snapshot"]["usage"] == 2 for item in seen.body["items"]):
            return Reply(422, '{"title": "Unprocessable"}')
        internal.snapshots.extend(seen.body["items"])
        return {"stored": len(seen.body["items"]), "duplicates": 0}

    internal.handle("POST", "/internal/snapshots", refuse_bad)
    outcomes = await asyncio.gather(
        *(usage.store_snapshots([snapshot_item(n)]) for n in range(4)), return_exceptions=True
    )
    assert [isinstance(o, ServiceError) and o.status == 422 for o in outcomes] == [False, False, True, False]
    assert sorted(s["snapshot"]["usage"] for s in internal.snapshots) == [0, 1, 3]
    assert [len(s.body["items"]) for s in internal.requests("/internal/snapshots")] == [4, 1, 1, 1, 1]


async def test_5xx_and_refused_connections_are_retryable(http, internal):
    _, _, usage = clients(http, internal)
    internal.handle("POST", "/internal/retention", lambda s: Reply(503, "{}"))
    with pytest.raises(ServiceError) as caught:
        await usage.apply_retention(date(2025, 1, 1))
    assert caught.value.retryable
    await internal.stop()
    with pytest.raises(ServiceError) as caught:
        await usage.apply_retention(date(2025, 1, 1))
    assert caught.value.retryable


async def test_usage_bodies(http, internal):
    _, _, usage = clients(http, internal)
    key_id = internal.add_key(KEY, workspace_id=WS)
    await usage.store_credits(
        key_id,
        CreditsReport(
            workspace_id=WS, observed_at=AT, total_credits=Decimal("100.5"), total_usage=Decimal("0.1015644762")
        ),
    )
    await usage.replace_activity(
        key_id, ActivityReport(workspace_id=WS, observed_at=AT, api_key_hash="h", dates=[date(2026, 8, 22)], rows=[])
    )
    raw = next(s for s in internal.seen if s.path.endswith("/credits"))
    assert raw.body == {
        "workspace_id": WS,
        "observed_at": "2026-08-23T10:15:30+00:00",
        "total_credits": Decimal("100.5"),
        "total_usage": Decimal("0.1015644762"),
    }
    assert internal.activity == [
        {
            "workspace_id": WS,
            "observed_at": "2026-08-23T10:15:30+00:00",
            "api_key_hash": "h",
            "dates": ["2026-08-22"],
            "rows": [],
        }
    ]
