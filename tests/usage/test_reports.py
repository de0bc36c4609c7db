"""Summary, daily rows, export and accounts: linked keys break down by model, unlinked ones say they don't;
input rules; CSV escaping and formula defusing; links follow key lists and labels."""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.http import assert_problem
from tests.usage.conftest import at, days_ago, item, money, snapshot, today
from tests.usage.test_accounts import activity_row, key_row

D = Decimal


async def get(client, tenant, path: str, expect: int = 200, **params: Any) -> Any:
    r = await client.get(f"/api/v1/usage/{path}", headers=tenant.headers, params=params)
    assert r.status_code == expect, r.text
    return json.loads(r.content, parse_float=Decimal)


def span(first: int, last: int = 0) -> dict[str, Any]:
    return {"from": days_ago(first).isoformat(), "to": days_ago(last).isoformat()}


async def key_with_days(ingest, tenant, label: str, *, spends: dict[int, str]) -> str:
    """A key with one snapshot per day (ages in `spends` and today): each listed day's spend is final."""
    key = str(uuid.uuid4())
    lifetime = D(0)
    items = []
    for age in sorted(spends, reverse=True):
        items.append(item(key, tenant.workspace_id, at(days_ago(age), 1), snapshot(lifetime, "0", label=label)))
        lifetime += D(spends[age])
    items.append(item(key, tenant.workspace_id, at(today(), 1), snapshot(lifetime + D("0.5"), "0.5", label=label)))
    await ingest.snapshots(*items)
    return key


async def link(ingest, tenant, mgmt: str, hash_: str, label: str, hour: int = 2) -> None:
    listing = {"workspace_id": tenant.workspace_id, "observed_at": at(today(), hour), "keys": [key_row(hash_, label)]}
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204


async def activity(ingest, tenant, mgmt: str, hash_: str, dates: list[str], rows: list[dict[str, Any]]) -> None:
    body = {
        "workspace_id": tenant.workspace_id,
        "observed_at": at(today(), 3),
        "api_key_hash": hash_,
        "dates": dates,
        "rows": rows,
    }
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", body)).status_code == 204


async def test_an_unlinked_key_has_day_totals_without_a_breakdown(committed_ingest, committed_client, alice):
    key = await key_with_days(committed_ingest, alice, "sk-or-v1-aaa...001", spends={2: "1.25", 1: "0.0000000003"})
    page = await get(committed_client, alice, "daily", **span(3))
    assert page["total"] == 3
    rows = [
        (r["date"], money(r["cost"]), r["model"], r["requests"], r["provisional"], r["source"]) for r in page["items"]
    ]
    assert rows == [
        (days_ago(2).isoformat(), D("1.25"), None, None, False, "snapshots"),
        (days_ago(1).isoformat(), D("0.0000000003"), None, None, False, "snapshots"),
        (today().isoformat(), D("0.5"), None, None, True, "snapshots"),
    ]
    summary = await get(committed_client, alice, "summary", **span(3))
    totals = summary["totals"]
    assert money(totals["cost"]) == money(totals["cost_without_breakdown"]) == D("1.7500000003")
    assert (totals["requests"], totals["provisional"], totals["rows"]) == (None, True, 3)
    assert [(k["key_id"], k["linked"], k["requests"]) for k in summary["by_key"]] == [(key, False, None)]
    assert [(m["model"], money(m["cost"])) for m in summary["by_model"]] == [(None, D("1.7500000003"))]
    assert [d["provisional"] for d in summary["by_day"]] == [False, False, True]


async def test_a_linked_key_breaks_down_by_model_and_provider(committed_ingest, committed_client, alice):
    label, hash_, mgmt = "sk-or-v1-bbb...002", "b2" * 32, str(uuid.uuid4())
    key = await key_with_days(committed_ingest, alice, label, spends={2: "0.7", 1: "9"})
    await link(committed_ingest, alice, mgmt, hash_, label)
    d2, d1 = days_ago(2).isoformat(), days_ago(1).isoformat()
    await activity(
        committed_ingest,
        alice,
        mgmt,
        hash_,
        [d2],
        [
            activity_row(d2, "openai/gpt-4.1", "0.4"),
            activity_row(d2, "openai/gpt-4.1", "0.1", endpoint_id="other"),  # same model and provider
            activity_row(d2, "openai/gpt-4.1", "0.2", provider_name="Azure"),
        ],
    )
    page = await get(committed_client, alice, "daily", key_id=key, **span(3))
    got = [(r["date"], r["model"], r["provider"], money(r["cost"]), r["requests"], r["source"]) for r in page["items"]]
    assert got == [
        (d2, "openai/gpt-4.1", "Azure", D("0.2"), 5, "activity"),
        (d2, "openai/gpt-4.1", "OpenAI", D("0.5"), 10, "activity"),
        (d1, None, None, D("9"), None, "snapshots"),  # not fetched: the day's total only
        (today().isoformat(), None, None, D("0.5"), None, "snapshots"),
    ]
    summary = await get(committed_client, alice, "summary", **span(3))
    assert money(summary["totals"]["cost"]) == D("10.2")
    assert money(summary["totals"]["cost_without_breakdown"]) == D("9.5")
    assert summary["totals"]["requests"] == 15
    (by_key,) = summary["by_key"]
    assert (by_key["linked"], by_key["label"], by_key["requests"]) == (True, label, 15)
    models = {m["model"]: money(m["cost"]) for m in summary["by_model"]}
    assert models == {"openai/gpt-4.1": D("0.7"), None: D("9.5")}
    # Filters and their totals.
    assert (await get(committed_client, alice, "daily", model="openai/gpt-4.1", **span(3)))["total"] == 2
    assert (await get(committed_client, alice, "daily", provider="Azure", **span(3)))["total"] == 1
    assert (await get(committed_client, alice, "daily", key_id=key, provider="Azure", **span(3)))["total"] == 1
    assert (await get(committed_client, alice, "daily", key_id=key, model="nope", **span(3)))["total"] == 0

    # Activity replaced again: the rows and every rollup move with it, nothing doubles.
    await activity(committed_ingest, alice, mgmt, hash_, [d2, d1], [activity_row(d1, "anthropic/claude", "9")])
    summary = await get(committed_client, alice, "summary", **span(3))
    assert {m["model"]: money(m["cost"]) for m in summary["by_model"]} == {"anthropic/claude": D("9"), None: D("0.5")}
    assert money(summary["totals"]["cost"]) == D("9.5")  # d2 fetched with no rows: a known zero
    assert (await get(committed_client, alice, "daily", **span(3)))["total"] == 2


async def test_links_follow_key_lists_and_ambiguous_labels_unlink(committed_ingest, committed_client, alice):
    label, mgmt = "sk-or-v1-ccc...003", str(uuid.uuid4())
    key = await key_with_days(committed_ingest, alice, label, spends={1: "2"})
    d1 = days_ago(1).isoformat()
    # Activity first, then the key list that links it: the key's days are rebuilt with the breakdown.
    await activity(committed_ingest, alice, mgmt, "c3" * 32, [d1], [activity_row(d1, "m/one", "2")])
    assert [r["model"] for r in (await get(committed_client, alice, "daily", **span(1, 1)))["items"]] == [None]
    await link(committed_ingest, alice, mgmt, "c3" * 32, label)
    assert [r["model"] for r in (await get(committed_client, alice, "daily", **span(1, 1)))["items"]] == ["m/one"]
    # Another hash behind the same label: ambiguous, back to totals only.
    listing = {
        "workspace_id": alice.workspace_id,
        "observed_at": at(today(), 4),
        "keys": [key_row("c3" * 32, label), key_row("d4" * 32, label)],
    }
    assert (await committed_ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204
    assert [r["model"] for r in (await get(committed_client, alice, "daily", **span(1, 1)))["items"]] == [None]
    summary = await get(committed_client, alice, "summary", **span(1))
    assert summary["by_key"][0]["key_id"] == key
    assert summary["by_key"][0]["linked"] is False


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"from": "2026-02-02", "to": "2026-02-01"}, 422, "invalid-range"),
        ({"from": "1999-01-01"}, 422, "invalid-range"),
        ({"to": "9999-12-31"}, 422, "invalid-range"),
        ({"from": "2026-13-01"}, 422, None),
        ({"to": "yesterday"}, 422, None),
        ({"sort": "password"}, 422, "invalid-sort"),
        ({"sort": "--cost"}, 422, "invalid-sort"),
        ({"per_page": 251}, 422, None),
        ({"page": 0}, 422, None),
        ({"key_id": "not-a-uuid"}, 422, None),
        ({"key_id": str(uuid.uuid4())}, 404, "key-not-found"),
        ({"model": "a\x00b"}, 422, None),
        ({"provider": "x" * 301}, 422, None),
    ],
)
@pytest.mark.parametrize("path", ["daily", "export", "summary"])
async def test_input_rules(committed_client, alice, path, params, status, slug):
    if path == "export" and {"page", "per_page"} & params.keys():
        pytest.skip("an export has no pages")
    if path == "summary" and params.keys() - {"from", "to"}:
        pytest.skip("the summary takes only a range")
    problem = assert_problem(
        await committed_client.get(f"/api/v1/usage/{path}", headers=alice.headers, params=params), status
    )
    if slug:
        assert problem["type"].endswith("/" + slug)


async def test_the_summary_checks_its_range_and_sorts_are_stable(committed_ingest, committed_client, alice):
    assert_problem(
        await committed_client.get(
            "/api/v1/usage/summary", headers=alice.headers, params={"from": "2999-01-02", "to": "2999-01-01"}
        ),
        422,
    )
    for n in range(3):
        await key_with_days(committed_ingest, alice, f"sk-or-v1-srt...00{n}", spends={1: str(n + 1)})
    by_cost = await get(committed_client, alice, "daily", sort="-cost", **span(1, 1))
    assert [money(r["cost"]) for r in by_cost["items"]] == [D(3), D(2), D(1)]
    newest = await get(committed_client, alice, "daily", sort="-date", per_page=2, **span(1))
    assert [r["date"] for r in newest["items"]] == [today().isoformat()] * 2
    seen = []
    for page in (1, 2, 3):
        seen += (await get(committed_client, alice, "daily", per_page=2, page=page, **span(1)))["items"]
    assert len(seen) == 6
    assert len({(r["date"], r["key_id"]) for r in seen}) == 6
    assert (await get(committed_client, alice, "daily", page=99, **span(1)))["items"] == []


NASTY_MODELS = [
    'vendor/model, "quoted"',
    '=HYPERLINK("http://x")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tTab",
    "\rcr",
    "line\nbreak",
]


async def test_csv_export_escapes_and_defuses_text_but_never_numbers(committed_ingest, committed_client, alice):
    label, hash_, mgmt = "sk-or-v1-csv...004", "e5" * 32, str(uuid.uuid4())
    key = await key_with_days(committed_ingest, alice, label, spends={1: "1"})
    await link(committed_ingest, alice, mgmt, hash_, label)
    d1 = days_ago(1).isoformat()
    rows = [
        activity_row(d1, model, f"-0.{n + 1}", provider_name="=cmd|' /C calc'!A0")
        for n, model in enumerate(NASTY_MODELS)
    ]
    await activity(committed_ingest, alice, mgmt, hash_, [d1], rows)

    r = await committed_client.get(
        "/api/v1/usage/export", headers=alice.headers, params={"format": "csv", **span(1, 1)}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.content.decode())))
    header, body = table[0], table[1:]
    assert header[:6] == ["date", "key_id", "model", "provider", "cost", "byok_cost"]
    models = {row[2]: row for row in body}
    expected = {m if m[0] not in "=+-@\t\r" else "'" + m for m in NASTY_MODELS}
    assert set(models) == expected
    for model, row in models.items():
        assert row[1] == key
        assert row[3] == "'=cmd|' /C calc'!A0"
        # Money stays an exact, negative number: not prefixed, not rounded.
        original = model[1:] if model.startswith("'") else model
        assert Decimal(row[4]) == D(f"-0.{NASTY_MODELS.index(original) + 1}")
        assert row[4].startswith("-")
        assert row[6] == "5"
        assert row[10] == "false"
        assert row[11] == "activity"

    j = await committed_client.get(
        "/api/v1/usage/export", headers=alice.headers, params={"format": "json", **span(1, 1)}
    )
    assert j.status_code == 200
    assert j.headers["content-type"].startswith("application/json")
    exported = json.loads(j.content, parse_float=Decimal)
    assert {row["model"] for row in exported} == set(NASTY_MODELS)  # JSON carries the names as they are
    assert sum(row["cost"] for row in exported) == -sum(D(f"0.{n + 1}") for n in range(len(NASTY_MODELS)))


async def test_exports_equal_the_daily_rows_and_empty_exports_are_valid(committed_ingest, committed_client, alice, bob):
    for n in range(3):
        await key_with_days(committed_ingest, alice, f"sk-or-v1-exp...00{n}", spends={3: "1", 2: str(n), 1: "0.25"})
    rows = (await get(committed_client, alice, "daily", per_page=250, sort="-cost", **span(3)))["items"]
    exported = json.loads(
        (
            await committed_client.get(
                "/api/v1/usage/export", headers=alice.headers, params={"format": "json", "sort": "-cost", **span(3)}
            )
        ).content,
        parse_float=Decimal,
    )
    assert exported == rows
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                (await committed_client.get("/api/v1/usage/export", headers=alice.headers, params=span(3))).text
            )
        )
    )
    assert len(csv_rows) == len(rows) == 12
    assert sum(Decimal(r["cost"]) for r in csv_rows) == sum(money(r["cost"]) for r in rows)
    # Bob's workspace is empty: a header only, an empty array.
    header = "date,key_id,model,provider,cost,byok_cost,requests,prompt_tokens,completion_tokens,reasoning_tokens"
    assert (await committed_client.get("/api/v1/usage/export", headers=bob.headers)).text.strip() == (
        f"{header},provisional,source"
    )
    assert (
        json.loads(
            (await committed_client.get("/api/v1/usage/export", headers=bob.headers, params={"format": "json"})).content
        )
        == []
    )
    assert (await get(committed_client, bob, "summary"))["by_key"] == []


async def test_accounts_show_balance_keys_shares_and_links(committed_ingest, committed_client, alice, bob):
    mgmt = str(uuid.uuid4())
    await committed_ingest.snapshots(
        item(
            mgmt,
            alice.workspace_id,
            at(today(), 1),
            snapshot("0", "0", label="sk-or-v1-mgm...999", is_management_key=True),
        )
    )
    label = "sk-or-v1-acc...005"
    key = await key_with_days(committed_ingest, alice, label, spends={1: "1"})
    listing = {
        "workspace_id": alice.workspace_id,
        "observed_at": at(today(), 2),
        "keys": [
            key_row("a1" * 32, label, usage=D("3"), limit=None, disabled=False),
            key_row("b2" * 32, "sk-or-v1-oth...006", usage=D("1"), disabled=True, expires_at="2027-01-01T00:00:00Z"),
        ],
    }
    assert (await committed_ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204
    page = await get(committed_client, alice, "accounts")
    assert page["total"] == 1
    (account,) = page["items"]
    assert (account["management_key_id"], account["label"], account["balance"]) == (mgmt, "sk-or-v1-mgm...999", None)
    keys = {k["hash"]: k for k in account["keys"]}
    assert money(keys["a1" * 32]["share"]) == D("0.75")
    assert keys["a1" * 32]["key_id"] == key
    assert keys["a1" * 32]["limit"] is None
    assert (keys["b2" * 32]["disabled"], keys["b2" * 32]["key_id"]) == (True, None)
    assert keys["b2" * 32]["expires_at"].startswith("2027-01-01")
    credits = {
        "workspace_id": alice.workspace_id,
        "observed_at": at(today(), 3),
        "total_credits": 10,
        "total_usage": D("2.5"),
    }
    assert (await committed_ingest.call("POST", f"/internal/accounts/{mgmt}/credits", credits)).status_code == 204
    balance = (await get(committed_client, alice, "accounts"))["items"][0]["balance"]
    assert (money(balance["balance"]), balance["known"]) == (D("7.5"), True)
    credits |= {"observed_at": at(today(), 4), "total_credits": 0, "total_usage": 0}
    assert (await committed_ingest.call("POST", f"/internal/accounts/{mgmt}/credits", credits)).status_code == 204
    balance = (await get(committed_client, alice, "accounts"))["items"][0]["balance"]
    assert (balance["balance"], balance["total_credits"], balance["known"]) == (None, None, False)
    assert (await get(committed_client, bob, "accounts")) == {"items": [], "total": 0, "page": 1, "per_page": 50}


async def test_indexes_serve_the_reads(db_engine):
    """The access paths the design rests on exist (the bench measures their speed)."""
    async with db_engine.connect() as conn:
        names = set((await conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'usage'"))).scalars())
    assert {"pk_daily_usage", "ix_daily_usage_key_day", "pk_daily_key_totals", "pk_daily_model_totals"} <= names


async def test_a_day_turning_final_with_the_same_figure_turns_final_in_the_rows(
    committed_ingest, committed_client, alice
):
    """No spend after the day's last snapshot: the provisional figure was already right, only the flag moves."""
    key = str(uuid.uuid4())
    await committed_ingest.snapshots(item(key, alice.workspace_id, at(days_ago(2), 20), snapshot("1", "0.5")))
    (row,) = (await get(committed_client, alice, "daily", **span(2, 2)))["items"]
    assert (money(row["cost"]), row["provisional"]) == (D("0.5"), True)
    await committed_ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1), 1), snapshot("1", "0")))
    (row,) = (await get(committed_client, alice, "daily", **span(2, 2)))["items"]
    assert (money(row["cost"]), row["provisional"]) == (D("0.5"), False)
    summary = await get(committed_client, alice, "summary", **span(2, 2))
    assert summary["totals"]["provisional"] is False
    # A repeat of the same figures changes nothing (and rebuilds nothing).
    await committed_ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1), 2), snapshot("1", "0")))
    assert (await get(committed_client, alice, "summary", **span(2)))["totals"]["rows"] == 2
