"""`manage_key_upstream` and `sweep_key_actions` (issue 17) against small real HTTP servers standing in for OpenRouter
(`PATCH /keys/{hash}`) and for keys and usage: the body and the management key sent, 429 / 5xx / timeouts deferred
with `Retry` and given up after the last try, 404 and a refused management key failing at once, a key without an
account never reaching OpenRouter, a limit's BYOK setting sent only when asked, and the sweep queueing lost actions once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from arq import Retry

from owr_shared.wire import codec
from owr_shared.wire.key_actions import manage_key_upstream_job_id
from owr_worker.jobs import sync_key_job_id
from owr_worker.key_actions import (
    KEY_GONE,
    MANAGEMENT_KEY_ELSEWHERE,
    MANAGEMENT_KEY_GONE,
    manage_key_upstream,
    sweep_key_actions,
)
from tests.worker.conftest import MGMT_KEY, Internal, Reply, Seen, key_row

HASH = "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943"
PATCH_PATH = f"/api/v1/keys/{HASH}"


class Usage:
    """usage's key action routes on the fake internal server: one action, its claims and reports."""

    def __init__(self, internal: Internal, management_key_id: str | None, **action: Any) -> None:
        self.id = str(uuid.uuid4())
        self.action: dict[str, Any] = {
            "id": self.id,
            "workspace_id": internal.workspaces.get(management_key_id or "", str(uuid.uuid4())),
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
        """As usage: only the current claim's report counts."""
        self.reports.append(seen.body)
        if seen.body["attempt"] == self.action["attempts"]:
            self.action["status"] = "pending" if seen.body["outcome"] == "retry" else seen.body["outcome"]
        return {"id": self.id, "status": self.action["status"], "attempts": self.action["attempts"]}


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
        {"outcome": "done", "attempt": 1, "error": None, "disabled": True, "limit_usd": None, "limit_reset": None}
    ]
    # The management key was revealed through keys (an audited reveal), never sent anywhere but OpenRouter.
    assert internal.requests("/internal/keys/reveal")
    assert all(MGMT_KEY not in s.raw.decode() for s in internal.seen if s.path.startswith("/internal/key-actions"))


async def test_a_user_s_disable_is_audited_as_the_kill_switch_s_with_who_asked(
    make_ctx, openrouter, internal, account, arq_redis
):
    """`disable-upstream` records a disable like a rule's, with `source: user` and the user: the worker sends the same
    PATCH and writes `upstream_disabled` into the key's trail with who asked and their words."""
    reason = "disabled at OpenRouter by a user: leaked in a public repo"
    user = str(uuid.uuid4())
    usage = Usage(internal, account, source="user", requested_by=user, reason=reason)
    openrouter.reply(PATCH_PATH, answer(disabled=True))
    assert await manage_key_upstream(make_ctx(), usage.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].body == {"disabled": True}
    [audit] = usage.audits
    assert (audit["action"], audit["action_id"], audit["source"]) == ("upstream_disabled", usage.id, "user")
    assert (audit["requested_by"], audit["reason"]) == (user, reason)
    assert [r["outcome"] for r in usage.reports] == ["done"]
    assert await arq_redis.queued_jobs() == []  # only an enable asks for a sync


async def test_a_limit_is_sent_exactly_and_enable_sends_disabled_false(make_ctx, openrouter, internal, account):
    limit = Usage(internal, account, kind="set_limit", limit_usd="12.3456789012", limit_reset="weekly")
    openrouter.reply(PATCH_PATH, answer(limit="12.3456789012", limit_reset="weekly"))
    assert await manage_key_upstream(make_ctx(), limit.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].raw == b'{"limit":12.3456789012,"limit_reset":"weekly"}'
    assert str(limit.reports[0]["limit_usd"]) == "12.3456789012"
    enable = Usage(internal, account, kind="enable")
    assert await manage_key_upstream(make_ctx(), enable.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].body == {"disabled": False}


@pytest.mark.parametrize("byok", [True, False])
async def test_a_limit_sends_the_byok_setting_only_when_the_action_has_one(
    make_ctx, openrouter, internal, account, byok
):
    """`include_byok_in_limit` goes into the PATCH as asked (false too); an action without one sends none (above)."""
    limit = Usage(internal, account, kind="set_limit", limit_usd="5", limit_reset=None, include_byok_in_limit=byok)
    openrouter.reply(PATCH_PATH, answer(limit="5", include_byok_in_limit=byok))
    assert await manage_key_upstream(make_ctx(), limit.id) == "done"
    assert openrouter.requests(PATCH_PATH)[-1].body == {"limit": 5, "limit_reset": None, "include_byok_in_limit": byok}
    assert [r["outcome"] for r in limit.reports] == ["done"]


async def test_a_done_enable_queues_a_sync_of_the_key(make_ctx, openrouter, internal, account, arq_redis):
    """keys marked the killed key invalid (its syncs got 401) and the due scan skips invalid keys: the enable asks
    for its sync at once rather than leave it to the daily validation."""
    enable = Usage(internal, account, kind="enable")
    openrouter.reply(PATCH_PATH, answer(disabled=False))
    assert await manage_key_upstream(make_ctx(), enable.id) == "done"
    queued = {job.job_id: job for job in await arq_redis.queued_jobs()}
    job = queued[sync_key_job_id(enable.action["key_id"])]
    assert (job.function, job.kwargs) == ("sync_key", {"key_id": enable.action["key_id"]})
    # A sync of the key already queued (or running) may have called OpenRouter before the enable: one more follows.
    again = Usage(internal, account, kind="enable", key_id=enable.action["key_id"])
    assert await manage_key_upstream(make_ctx(), again.id) == "done"
    ids = {job.job_id for job in await arq_redis.queued_jobs()}
    assert sync_key_job_id(enable.action["key_id"]) + ":after-enable" in ids
    # A disable or a limit asks for none.
    disable = Usage(internal, account)
    openrouter.reply(PATCH_PATH, answer(disabled=True))
    assert await manage_key_upstream(make_ctx(), disable.id) == "done"
    assert sync_key_job_id(disable.action["key_id"]) not in {j.job_id for j in await arq_redis.queued_jobs()}


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
    usage.action["attempts"] = 2  # the action's own tries decide, not arq's (see below)
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
        {"outcome": "failed", "attempt": 1, "error": KEY_GONE, "disabled": None, "limit_usd": None, "limit_reset": None}
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


async def test_the_lease_follows_the_job_timeout_and_a_superseded_try_acts_no_further(
    make_ctx, openrouter, internal, account, arq_redis
):
    usage = Usage(internal, account, kind="enable")

    def claimed_then_lost(seen: Seen) -> Any:
        usage.action["attempts"] += 1
        answer = dict(usage.action)
        usage.action["attempts"] += 1  # this try's lease runs out and another claims the action
        return answer

    internal.handle("POST", f"/internal/key-actions/{usage.id}/claim", claimed_then_lost)
    openrouter.reply(PATCH_PATH, answer(disabled=False))
    assert await manage_key_upstream(make_ctx(job_timeout_seconds=200, lock_ttl_seconds=400), usage.id) == "stale"
    [claim] = internal.requests(f"/internal/key-actions/{usage.id}/claim")
    assert claim.body == {"lease_seconds": 230}
    assert usage.reports[-1]["attempt"] == 1
    assert usage.action["status"] == "pending"  # the stale report changed nothing
    assert await arq_redis.queued_jobs() == []  # nor did it ask for the key's sync
    # A deferred try whose claim was superseded does not defer the job either: the current claim's try goes on.
    openrouter.reply(PATCH_PATH, Reply(503, "{}"))
    assert await manage_key_upstream(make_ctx(openrouter_retry_attempts=1), usage.id) == "stale"


def test_the_job_timeout_must_leave_room_for_a_key_action_s_lease(settings_factory):
    assert settings_factory(job_timeout_seconds=600, lock_ttl_seconds=900).key_action_lease_seconds == 630
    with pytest.raises(ValueError, match="job_timeout_seconds must be at most 86370"):
        settings_factory(job_timeout_seconds=86_380, lock_ttl_seconds=86_400)


async def test_waiting_behind_an_earlier_action_spends_none_of_the_action_s_tries(
    make_ctx, openrouter, internal, account
):
    """Waits (5 s each) are arq tries too: a first real try on arq's last but one still defers a 429."""
    usage = Usage(internal, account)
    limited = Reply(429, '{"error": {"code": 429, "message": "Rate limit exceeded"}}')
    openrouter.reply(PATCH_PATH, limited)
    ctx = make_ctx(job_max_tries=3)
    ctx["job_try"] = 3  # two waits behind an earlier action came first
    with pytest.raises(Retry):
        await manage_key_upstream(ctx, usage.id)
    assert usage.reports[-1] == {**usage.reports[-1], "outcome": "retry", "attempt": 1}
    # arq's tries all spent: the action is left pending for the sweep, not failed.
    ctx["job_try"] = 4
    assert await manage_key_upstream(ctx, usage.id) == "deferred"
    assert usage.reports[-1]["outcome"] == "retry"
    assert usage.action["status"] == "pending"


async def test_a_management_key_of_another_workspace_never_acts(make_ctx, openrouter, internal, account):
    usage = Usage(internal, account, workspace_id=str(uuid.uuid4()))
    assert await manage_key_upstream(make_ctx(), usage.id) == "failed"
    assert usage.reports[-1]["error"] == MANAGEMENT_KEY_ELSEWHERE
    assert openrouter.requests(PATCH_PATH) == []
