"""`manage_key_upstream` and `sweep_key_actions` (issue 17) against small real HTTP servers standing in for OpenRouter
(`PATCH /keys/{hash}`) and for keys and usage: the body and the management key sent, 429 / 5xx / timeouts deferred
with `Retry` and given up after the last try, 404 and a refused management key failing at once, a key without an
account never reaching OpenRouter, and the sweep queueing lost actions once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from arq import Retry

from owr_shared.wire import codec
from owr_shared.wire.key_actions import manage_key_upstream_job_id
from owr_worker.key_actions import KEY_GONE, MANAGEMENT_KEY_GONE, manage_key_upstream, sweep_key_actions
from tests.worker.conftest import MGMT_KEY, Internal, Reply, Seen, key_row

HASH = "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943"
PATCH_PATH = f"/api/v1/keys/{HASH}"


class Usage:
    """usage's key action routes on the fake internal server: one action, its claims and reports."""

    def __init__(self, internal: Internal, management_key_id: str | None, **action: Any) -> None:
        self.id = str(uuid.uuid4())
        self.action: dict[str, Any] = {
            "id": self.id,
            "workspace_id": str(uuid.uuid4()),
            "key_id": str(uuid.uuid4()),
            "kind": "disable",
            "status": "pending",
            "ready": True,
            "attempts": 0,
            "management_key_id": management_key_id,
            "api_key_hash": HASH,
            "limit_usd": None,
            "limit_reset": None,
            **action,
        }
        self.reports: list[dict[str, Any]] = []
        self.audits: list[dict[str, Any]] = []
        self.open: list[str] = []
        internal.handle("POST", f"/internal/keys/{self.action['key_id']}/upstream-audit", self._audit)
        internal.handle("POST", f"/internal/key-actions/{self.id}/claim", self._claim)
        internal.handle("POST", f"/internal/key-actions/{self.id}/result", self._result)
        internal.handle("GET", "/internal/key-actions/open", lambda seen: {"ids": self.open})

    def _claim(self, seen: Seen) -> Any:
        self.action["attempts"] += 1
        return self.action

    def _audit(self, seen: Seen) -> Any:
        if not seen.headers.get("Authorization", "").startswith("Bearer tok-owr-keys-"):
            return Reply(401, "{}")
        self.audits.append(seen.body)
        return None

    def _result(self, seen: Seen) -> Any:
        self.reports.append(seen.body)
        return {
            "id": self.id,
            "status": "pending" if seen.body["outcome"] == "retry" else seen.body["outcome"],
            "attempts": 1,
        }


def answer(**fields: Any) -> Reply:
    return Reply(body=codec.dumps({"data": key_row(1, hash=HASH, **fields)}))


@pytest.fixture
def account(internal: Internal) -> str:
    return internal.add_key(MGMT_KEY)


async def test_a_disable_is_sent_with_the_management_key_and_reported(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account)
    openrouter.reply(PATCH_PATH, answer(disabled=True))
    assert await manage_key_upstream(make_ctx(), usage.id) == "done"
    [sent] = openrouter.requests(PATCH_PATH)
    assert (sent.method, sent.body) == ("PATCH", {"disabled": True})
    assert sent.headers["Authorization"] == f"Bearer {MGMT_KEY}"
    assert usage.reports == [
        {"outcome": "done", "error": None, "disabled": True, "limit_usd": None, "limit_reset": None}
    ]
    # The management key was revealed through keys (an audited reveal), never sent anywhere but OpenRouter.
    assert internal.requests("/internal/keys/reveal")
    assert all(MGMT_KEY not in s.raw.decode() for s in internal.seen if s.path.startswith("/internal/key-actions"))


async def test_a_limit_is_sent_exactly_and_enable_sends_disabled_false(make_ctx, openrouter, internal, account):
    limit = Usage(internal, account, kind="set_limit", limit_usd="12.3456789012", limit_reset="weekly")
    openrouter.reply(PATCH_PATH, answer(limit="12.3456789012", limit_reset="weekly"))
    assert await manage_key_upstream(make_ctx(), limit.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].raw == b'{"limit":12.3456789012,"limit_reset":"weekly"}'
    assert str(limit.reports[0]["limit_usd"]) == "12.3456789012"
    enable = Usage(internal, account, kind="enable")
    assert await manage_key_upstream(make_ctx(), enable.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].body == {"disabled": False}


async def test_a_rate_limit_defers_the_job_and_the_last_try_gives_up(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account)
    limited = Reply(429, '{"error": {"code": 429, "message": "Rate limit exceeded"}}', headers={"Retry-After": "120"})
    openrouter.reply(PATCH_PATH, limited)
    ctx = make_ctx(job_max_tries=3)
    with pytest.raises(Retry) as deferred:
        await manage_key_upstream(ctx, usage.id)
    assert deferred.value.defer_score is not None
    assert deferred.value.defer_score >= 100_000  # Retry-After: 120 s, in ms
    assert usage.reports[-1]["outcome"] == "retry"
    assert "429" in usage.reports[-1]["error"]
    ctx["job_try"] = 3
    assert await manage_key_upstream(ctx, usage.id) == "failed"
    assert usage.reports[-1]["outcome"] == "failed"
    assert "gave up after 3 tries" in usage.reports[-1]["error"]


@pytest.mark.parametrize("trouble", ["server_error", "timeout"])
async def test_server_errors_and_timeouts_are_retried_in_place_then_deferred(
    make_ctx, openrouter, internal, account, trouble
):
    usage = Usage(internal, account)
    if trouble == "server_error":
        openrouter.reply(PATCH_PATH, Reply(502, "<html>Bad gateway</html>", content_type="text/html"))
    else:
        openrouter.reply(PATCH_PATH, Reply(body="{}", delay=1.0))
    ctx = make_ctx(openrouter_timeout_seconds=0.2, openrouter_retry_attempts=2)
    with pytest.raises(Retry):
        await manage_key_upstream(ctx, usage.id)
    assert len(openrouter.requests(PATCH_PATH)) == 2  # the client's in-place retries
    assert usage.reports[-1]["outcome"] == "retry"
    assert ("502" if trouble == "server_error" else "timeout") in usage.reports[-1]["error"]


async def test_keys_away_for_the_audit_tries_the_action_again(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account)
    internal.handle("POST", f"/internal/keys/{usage.action['key_id']}/upstream-audit", lambda s: Reply(503, "{}"))
    openrouter.reply(PATCH_PATH, answer(disabled=True))
    with pytest.raises(Retry):
        await manage_key_upstream(make_ctx(), usage.id)
    assert usage.reports[-1]["outcome"] == "retry"


async def test_a_key_openrouter_no_longer_has_fails_at_once(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account)
    openrouter.reply(PATCH_PATH, Reply(404, '{"error": {"code": 404, "message": "Resource not found"}}'))
    assert await manage_key_upstream(make_ctx(), usage.id) == "failed"
    assert usage.reports == [
        {"outcome": "failed", "error": KEY_GONE, "disabled": None, "limit_usd": None, "limit_reset": None}
    ]
    assert len(openrouter.requests(PATCH_PATH)) == 1


async def test_a_refused_or_missing_management_key_fails_with_its_reason(make_ctx, openrouter, internal, account):
    refused = Usage(internal, account)
    openrouter.reply(PATCH_PATH, Reply(401, '{"error": {"message": "User not found.", "code": 401}}'))
    assert await manage_key_upstream(make_ctx(), refused.id) == "failed"
    assert "refused the account's management key (401)" in refused.reports[-1]["error"]
    gone = Usage(internal, str(uuid.uuid4()))  # keys no longer has it
    assert await manage_key_upstream(make_ctx(), gone.id) == "failed"
    assert gone.reports[-1]["error"] == MANAGEMENT_KEY_GONE


async def test_an_action_that_cannot_be_done_never_reaches_openrouter(make_ctx, openrouter, internal):
    failed = Usage(internal, None, ready=False, status="failed", error="not linked", api_key_hash=None)
    assert await manage_key_upstream(make_ctx(), failed.id) == "failed"
    running = Usage(internal, None, ready=False, status="running")
    assert await manage_key_upstream(make_ctx(), running.id) == "busy"
    waiting = Usage(internal, None, ready=False, status="pending")
    with pytest.raises(Retry):  # an earlier action on the key goes first
        await manage_key_upstream(make_ctx(), waiting.id)
    assert await manage_key_upstream(make_ctx(), str(uuid.uuid4())) == "gone"  # usage answers 404
    assert await manage_key_upstream(make_ctx(), "not-a-uuid") == "gone"
    assert openrouter.requests(PATCH_PATH) == []
    assert failed.reports == running.reports == []


async def test_the_sweep_queues_lost_actions_once(make_ctx, internal, arq_redis):
    usage = Usage(internal, None)
    other = str(uuid.uuid4())
    usage.open = [usage.id, other]
    ctx = make_ctx()
    assert await sweep_key_actions(ctx) == 2
    assert await sweep_key_actions(ctx) == 0  # their jobs wait already
    queued = {job.job_id for job in await arq_redis.queued_jobs()}
    assert {manage_key_upstream_job_id(usage.id), manage_key_upstream_job_id(other)} <= queued


async def test_openrouter_refuses_a_hash_that_is_not_one(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account, api_key_hash="../credits")
    assert await manage_key_upstream(make_ctx(), usage.id) == "failed"
    assert openrouter.seen == []
