"""What alerts say, per event type and per format: the words from `data` only, each format's escaping, Discord's
2000 characters, and no mention or link a key's name could smuggle in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from owr_shared.wire.alerts import EVENT_TYPES
from owr_worker import alert_formats
from owr_worker.alert_text import describe
from owr_worker.alert_values import AlertText, Section, clean, money, percent, when

BUDGET = {
    "budget_id": "6a0e9c5e-8c1d-4a57-9d55-0f2b3f0f5a11",
    "name": "Team X",
    "scope": {"type": "key", "id": "0b7c", "name": "prod"},
    "period": {"kind": "weekly", "start": "2026-11-30T00:00:00Z", "resets_at": "2026-12-07T00:00:00Z"},
    "spend_usd": "8.5",
    "amount_usd": "10",
    "percent_used": "85",
    "threshold": 80,
    "forecast_usd": "12.1",
    "projected_cross_at": "2026-12-03T14:00:00Z",
}
KEY = {"key_id": "0b7c", "key_name": "prod", "label": "sk-or-v1-0e6...c96"}


def words(event_type: str, data: dict[str, Any], channel: str = "ops") -> AlertText:
    return describe(event_type, data, channel_name=channel)


def test_a_budget_crossing_reads_like_a_sentence() -> None:
    text = words("budget.threshold_crossed", BUDGET)
    assert text.subject == "Budget 'Team X' passed 80 %"
    assert text.blocks[0] == "$8.50 of $10.00 this week (85 %); forecast $12.10, hits $10 Thu 14:00 UTC"
    assert "Scope: the key 'prod'. The period resets Mon 7 Dec 00:00 UTC." in text.blocks
    assert words("budget.exceeded", {**BUDGET, "spend_usd": "12", "percent_used": "120"}).subject == (
        "Budget 'Team X' exceeded"
    )
    assert words("budget.recovered", BUDGET).subject == "Budget 'Team X' is back within its amount"


def test_every_event_type_has_words_even_without_data() -> None:
    for event_type in EVENT_TYPES:
        for data in ({}, {"name": None, "spend_usd": {"odd": 1}, "period": "weekly", "top_keys": "x"}):
            text = words(event_type, data)
            assert text.subject
            assert "None" not in text.subject
            assert all(isinstance(b, str | Section) for b in text.blocks)
            rendered = alert_formats.plain(text, channel_name="ops")
            assert "None" not in rendered
            assert "{" not in rendered


@pytest.mark.parametrize(
    ("event_type", "data", "subject"),
    [
        ("key.invalid", KEY, "Key 'prod' is invalid"),
        ("key.expiring", {**KEY, "expires_at": "2026-12-10T09:30:00Z"}, "Key 'prod' expires Thu 10 Dec 09:30 UTC"),
        (
            "key.limit_threshold_crossed",
            {**KEY, "percent_used": 92, "usage_usd": "92", "limit_usd": "100"},
            "Key 'prod' used 92 % of its OpenRouter limit",
        ),
        ("key.disabled", KEY, "Key 'prod' is disabled on OpenRouter"),
        ("key.anomaly", {**KEY, "kind": "spend_spike"}, "Key 'prod' spends far more than usual"),
        ("key.anomaly", {**KEY, "kind": "new_model"}, "Key 'prod' uses a model it never used before"),
        ("key.anomaly", KEY, "Key 'prod' spends more than usual"),
        ("account.balance_low", {"account_name": "main", "balance_usd": "4.2"}, "OpenRouter balance low: $4.20 left"),
        ("account.runway_low", {"balance_usd": "5", "runway_days": "2.54"}, "OpenRouter credit runs out in 2.5 days"),
        (
            "sync.failing",
            {**KEY, "since": "2026-12-03T13:00:00Z"},
            "Key 'prod' has not synced since Thu 3 Dec 13:00 UTC",
        ),
        ("sync.recovered", KEY, "Key 'prod' syncs again"),
        ("channel.disabled", {"channel_name": "hooks", "reason": "410 Gone"}, "Channel 'hooks' was disabled"),
        ("test", {}, "Test alert from OpenRouter Watcher"),
    ],
)
def test_subjects(event_type: str, data: dict[str, Any], subject: str) -> None:
    assert words(event_type, data).subject == subject


def test_an_anomaly_says_its_figures_and_day() -> None:
    spike = {**KEY, "kind": "spend_spike", "day": "2026-12-03", "spend_usd": "22.5", "baseline_usd": "1.1"}
    assert words("key.anomaly", spike).blocks[0] == "$22.50 against a usual $1.10 on 2026-12-03."
    model = {**KEY, "kind": "new_model", "day": "2026-12-03", "spend_usd": "0.75", "evidence": {"models": ["x/y"]}}
    assert words("key.anomaly", model).blocks[0] == "First use of x/y ($0.75) on 2026-12-03."
    woke = {**KEY, "kind": "dormant_wakeup", "spend_usd": "3", "evidence": {"last_spend_day": "2026-11-01"}}
    assert words("key.anomaly", woke).blocks[0] == "$3.00 spent, last spend on 2026-11-01."


def test_a_price_drift_names_the_model_the_rise_and_its_basis() -> None:
    data = {
        "model": "anthropic/claude-sonnet-4",
        "provider": "Anthropic",
        "week": {"start": "2026-11-23", "end": "2026-11-30"},
        "previous_week": {"start": "2026-11-16", "end": "2026-11-23"},
        "usd_per_mtok": "5.806824676",
        "previous_usd_per_mtok": "4.563853301",
        "usd_per_mtok_prompt": "3.750000000",
        "usd_per_mtok_completion": "0.075000000",
        "drift_pct": "25.00",
        "drift_basis": "split",
    }
    text = words("price.drift", data)
    assert text.subject == "anthropic/claude-sonnet-4 on Anthropic costs 25 % more per token"
    assert text.blocks[0] == (
        "Week of 23 Nov 2026: $3.75 per million prompt tokens, $0.075 per million completion tokens; "
        "$5.81 per million tokens on average (the week before: $4.56)."
    )
    assert "a change of mix is not counted" in str(text.blocks[1])
    blended = words("price.drift", {**data, "drift_basis": "blended", "usd_per_mtok_prompt": None})
    assert "split is unknown" in str(blended.blocks[1])
    assert "prompt tokens" not in str(blended.blocks[0])
    assert words("price.drift", {}).subject == "A model costs more per token"


def test_a_kill_switch_says_why_and_how_to_undo_it() -> None:
    data = {**KEY, "reason": "budget 'Team X' exceeded", "source": "budget", "action_id": "9f1e"}
    text = words("key.disabled", data)
    assert text.subject == "Key 'prod' is disabled on OpenRouter"
    assert text.blocks[0] == (
        "The kill switch disabled it: budget 'Team X' exceeded. Requests with it fail until it is enabled again"
        " (its page, or enable-upstream)."
    )
    assert words("key.disabled", KEY).blocks[0] == (
        "Requests with it fail until it is enabled again (its page, or enable-upstream)."
    )


def test_a_user_s_disable_says_who_and_why_not_the_kill_switch() -> None:
    why = "disabled at OpenRouter by a user: leaked in a public repo, see the incident channel for the details " + (
        "x" * 100
    )
    data = {**KEY, "reason": why, "source": "user", "requested_by": "5b1e", "budget_id": None, "action_id": "9f1e"}
    text = words("key.disabled", data)
    assert text.subject == "Key 'prod' is disabled on OpenRouter"
    first = str(text.blocks[0])
    assert first.startswith("Disabled at OpenRouter by a user: leaked in a public repo")
    assert "x" * 100 + ". Requests with it fail until it is enabled again" in first  # said whole, not cut at 120
    assert "kill switch" not in first
    ended = words("key.disabled", {**data, "reason": "disabled at OpenRouter by a user: leaked!"}).blocks[0]
    assert str(ended).startswith("Disabled at OpenRouter by a user: leaked! Requests")
    bare = words("key.disabled", {**KEY, "source": "user"}).blocks[0]
    assert str(bare).startswith("A user disabled it from OpenRouter Watcher. Requests")


def test_a_test_event_names_its_channel() -> None:
    assert "the channel 'ops'" in str(words("test", {}, channel="ops").blocks[0])


def test_digests_compare_and_list() -> None:
    data = {
        "period": {"kind": "weekly", "start": "2026-11-30T00:00:00Z", "end": "2026-12-07T00:00:00Z"},
        "spend_usd": "12.3",
        "previous_spend_usd": "10",
        "top_keys": [{"name": f"k{n}", "spend_usd": str(20 - n)} for n in range(12)],
        "top_models": [{"model": "openai/gpt-4.1", "spend_usd": "9"}],
        "keys_without_limit": [{"name": "prod"}],
        "dormant_keys": [{"name": "old", "last_used_at": "2026-10-01T00:00:00Z"}],
        "expiring_keys": [{"name": "temp", "expires_at": "2026-12-10T00:00:00Z"}],
    }
    text = words("report.weekly", data)
    assert text.subject == "Weekly report, 30 Nov to 6 Dec 2026: $12.30 spent"
    assert text.blocks[0] == "$12.30 spent, up 23 % on the week before ($10.00)."
    sections = {b.title: b.items for b in text.blocks if isinstance(b, Section)}
    assert sections["Top keys"][0] == "k0: $20.00"
    assert sections["Top keys"][-1] == "… and 2 more"
    assert len(sections["Top keys"]) == 11
    assert sections["Top models"] == ("openai/gpt-4.1: $9.00",)
    assert sections["Dormant keys"] == ("old (last used 1 Oct 2026)",)
    assert sections["Keys expiring soon"] == ("temp, expires Thu 10 Dec 00:00 UTC",)
    monthly = words("report.monthly", {**data, "period": {"kind": "monthly", "start": "2026-11-01T00:00:00Z"}})
    assert monthly.subject.startswith("Monthly report, November 2026: $12.30 spent")
    assert words("report.weekly", {"spend_usd": "0"}).blocks == ("$0.00 spent.",)


def test_a_digest_as_usage_writes_it() -> None:
    """The shape of `owr_usage.digests`: key lists as `{count, keys}`, keys by label, dates for the period."""
    keys = [{"key_id": str(n), "label": f"sk-or-v1-{n:03d}...{n:03d}"} for n in range(10)]
    data = {
        "kind": "monthly",
        "period": {"start": "2026-11-01", "end": "2026-12-01"},
        "spend_usd": "80",
        "previous_spend_usd": "100",
        "provisional": True,
        "top_keys": [{"key_id": "1", "label": "sk-or-v1-001...001", "spend_usd": "50"}],
        "top_models": [],
        "keys_without_limit": {"count": 14, "keys": keys},
        "dormant_keys": {"days": 30, "count": 1, "keys": keys[:1]},
        "expiring_keys": {"count": 0, "keys": []},
    }
    text = words("report.monthly", data)
    assert text.subject == "Monthly report, November 2026: $80.00 spent"
    assert text.blocks[:2] == (
        "$80.00 spent, down 20 % on the month before ($100.00).",
        "The last day's figures are provisional until OpenRouter's day ends.",
    )
    sections = {b.title: b.items for b in text.blocks if isinstance(b, Section)}
    assert sections["Top keys"] == ("sk-or-v1-001...001: $50.00",)
    assert sections["Keys with no limit"][-1] == "… and 4 more"
    assert len(sections["Keys with no limit"]) == 11
    assert sections["Dormant keys (no spend in 30 days)"] == ("sk-or-v1-000...000",)
    assert set(sections) == {"Top keys", "Keys with no limit", "Dormant keys (no spend in 30 days)"}


def test_key_and_account_events_as_usage_writes_them() -> None:
    near = {**KEY, "limit_usd": "100", "limit_remaining_usd": "8", "limit_reset": "monthly", "percent_used": "92"}
    assert words("key.limit_threshold_crossed", near).blocks[0] == (
        "$92.00 of its $100.00 limit (monthly window). OpenRouter stops the key at its limit."
    )
    runway = {"label": "sk-or-v1-mgm...aaa", "balance_usd": "5", "burn_usd_per_day": "2", "runway_days": "2.5"}
    assert words("account.runway_low", runway).blocks[0] == (
        "Account 'sk-or-v1-mgm...aaa': $5.00 left at $2.00 a day (recent average). Top up before requests start failing."
    )


def test_values() -> None:
    assert money("1234.5") == "$1,234.50"
    assert money(Decimal("0.0042")) == "$0.0042"
    assert money("10", compact=True) == "$10"
    assert money("nan") is None
    assert money(True) is None
    assert money("x") is None
    assert percent("85.0") == "85 %"
    assert percent(12.25) == "12.2 %"
    assert when("2026-12-03T15:00:00+01:00") == "Thu 14:00 UTC"
    assert clean("a\nb\r\n\tc\u2028d") == "a b c d"
    assert len(clean("x" * 500)) == 120


NASTY = "<!channel> *bold* [click](https://evil.example) @everyone\nFAKE: line"


def test_a_name_cannot_add_lines_ping_or_link() -> None:
    text = words("key.invalid", {**KEY, "key_name": NASTY})
    assert "\n" not in text.subject
    slack = alert_formats.slack(text)["text"]
    assert "<!channel>" not in slack
    assert "&lt;!channel&gt;" in slack
    assert "\nFAKE" not in slack
    discord = alert_formats.discord(text)
    assert discord["allowed_mentions"] == {"parse": []}
    assert "[click](" not in discord["content"]
    assert "\\[click\\]" in discord["content"]
    html = alert_formats.html_body(text, channel_name="<b>ops</b>")
    assert "<!channel>" not in html
    assert "&lt;!channel&gt;" in html
    assert "<b>ops</b>" not in html


def test_discord_stays_within_2000_characters() -> None:
    many = [{"name": "k" * 100, "spend_usd": "1"}] * 10
    data = {"spend_usd": "1", "top_keys": many, "keys_without_limit": many, "dormant_keys": many, "expiring_keys": many}
    content = alert_formats.discord(words("report.monthly", data))["content"]
    assert len(content) <= 2000
    assert content.endswith("\n…")


def test_plain_and_html_carry_the_same_words() -> None:
    text = words("budget.threshold_crossed", BUDGET)
    plain = alert_formats.plain(text, channel_name="ops")
    html = alert_formats.html_body(text, channel_name="ops")
    assert plain.startswith("Budget 'Team X' passed 80 %\n\n$8.50 of $10.00 this week")
    assert "Budget &#x27;Team X&#x27; passed 80 %" in html
    assert "to the channel 'ops'" in plain
    assert alert_formats.email_subject(text) == "[OpenRouter Watcher] Budget 'Team X' passed 80 %"
