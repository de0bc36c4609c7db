"""Every sync outcome reaches usage's key rules (`POST /internal/key-status`), best effort."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from owr_worker.jobs import sync_key
from tests.worker.conftest import KEY, KEY_BODY, Reply

WS = "2b0a7f61-8a1e-4a4e-9d55-0d7c4f3f2a10"


def _recent(value: str) -> bool:
    return datetime.fromisoformat(value) > datetime.now(UTC) - timedelta(minutes=1)


async def test_each_outcome_is_told_to_the_key_rules_with_the_keys_name(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply(
        "/api/v1/key",
        Reply(body=KEY_BODY),
        Reply(401, '{"error": {"message": "User not found.", "code": 401}}'),
        Reply(400, '{"error": {"message": "Bad request", "code": 400}}'),
    )
    assert [await sync_key(ctx, key_id) for _ in range(3)] == ["valid", "invalid", "error"]
    assert [(s["key_id"], s["workspace_id"], s["name"], s["status"]) for s in internal.key_statuses] == [
        (key_id, WS, f"key {key_id[:8]}", status) for status in ("valid", "invalid", "error")
    ]
    assert all(_recent(s["observed_at"]) for s in internal.key_statuses)
    assert internal.key_statuses[1]["error"] == "OpenRouter rejected the key (401): User not found."


async def test_concurrent_outcomes_share_one_call(make_ctx, openrouter, internal):
    ctx = make_ctx(batch_max_wait_ms=500)
    ids = [internal.add_key(KEY, WS) for _ in range(5)]
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    assert await asyncio.gather(*(sync_key(ctx, i) for i in ids)) == ["valid"] * 5
    assert [len(s.body["items"]) for s in internal.requests("/internal/key-status")] == [5]


async def test_a_failing_key_rules_call_never_fails_the_sync(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    for answer in (Reply(503, "{}"), Reply(422, "{}")):
        internal.handle("POST", "/internal/key-status", lambda seen, answer=answer: answer)
        assert await sync_key(ctx, key_id) == "valid"
    assert [r["status"] for r in internal.statuses[key_id]] == ["valid", "valid"]
    assert len(internal.snapshots) == 2
