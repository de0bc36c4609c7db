"""Effective prices (`GET /api/v1/insights/prices`, issue 17) and the `price.drift` rule, on activity ingested
through the internal API: a seeded generator over several models, providers and keys with planted prices; the
figures against an independent computation, a planted rise flagged once, flat prices (whatever the mix) never,
filters, bad input, other workspaces never shown."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest

from owr_usage.prices import service as prices_service
from owr_usage.prices.service import Sums, drift, settled_week
from tests.support.http import assert_problem, bearer
from tests.support.tenants import Tenant
from tests.usage.conftest import Ingest, at, days_ago, item, snapshot
from tests.usage.test_accounts import key_row

PATH = "/api/v1/insights/prices"
D = Decimal
MTOK = 1_000_000


@dataclass(frozen=True)
class Offer:
    """A model on a provider at planted prices (USD per token), plus a per-request fee that no token split fits."""

    model: str
    provider: str
    prompt: Decimal
    completion: Decimal
    fee: Decimal = Decimal(0)


GPT = Offer("openai/gpt-4.1", "OpenAI", D("0.000002"), D("0.000008"))
GPT_AZURE = Offer("openai/gpt-4.1", "Azure", D("0.0000022"), D("0.0000088"))
CLAUDE = Offer("anthropic/claude-sonnet-4", "Anthropic", D("0.000003"), D("0.000015"))
FLASH = Offer("google/gemini-2.5-flash", "Google", D("0.0000003"), D("0.0000025"))
SEARCH = Offer("perplexity/sonar", "Perplexity", D("0.000001"), D("0.000001"), fee=D("0.005"))
OFFERS = (GPT, GPT_AZURE, CLAUDE, FLASH, SEARCH)


@dataclass(frozen=True)
class Row:
    day: date
    key: int
    offer: Offer
    requests: int
    prompt: int
    completion: int
    cost: Decimal  # usage + BYOK inference cost


def generate(
    seed: int,
    days: list[date],
    keys: int,
    offers: tuple[Offer, ...] = OFFERS,
    *,
    rise: dict[Offer, tuple[date, Decimal]] | None = None,
    prompt_heavy_from: date | None = None,
) -> list[Row]:
    """Daily rows of each key and offer (most days), costs exactly the planted prices of the day: an offer in
    `rise` costs `factor` times as much from its date on; from `prompt_heavy_from` the mix leans to prompts."""
    rng = random.Random(seed)
    rows = []
    for day in days:
        for key in range(keys):
            for offer in offers:
                if rng.random() > 0.75:
                    continue
                prompt, completion = rng.randint(1_000, 400_000), rng.randint(100, 60_000)
                if prompt_heavy_from is not None and day >= prompt_heavy_from:
                    prompt, completion = prompt * 4, max(1, completion // 4)
                requests = rng.randint(1, 80)
                since, factor = (rise or {}).get(offer, (None, D(1)))
                scale = factor if since is not None and day >= since else D(1)
                cost = (offer.prompt * prompt + offer.completion * completion) * scale + offer.fee * requests
                rows.append(Row(day, key, offer, requests, prompt, completion, cost))
    return rows


@dataclass
class Account:
    management_key_id: str
    keys: list[tuple[str, str]]  # (key id, key hash)


async def linked_keys(ingest: Ingest, tenant: Tenant, count: int) -> Account:
    """`count` inference keys with a snapshot, linked by label to one account's key list."""
    mgmt, keys, listed = str(uuid.uuid4()), [], []
    for _ in range(count):
        key, hash_ = str(uuid.uuid4()), uuid.uuid4().hex * 2
        label = f"sk-or-v1-{uuid.uuid4().hex[:3]}...{uuid.uuid4().hex[:3]}"
        await ingest.snapshots(item(key, tenant.workspace_id, at(days_ago(0), 0, 5), snapshot("1", "0", label=label)))
        keys.append((key, hash_))
        listed.append(key_row(hash_, label))
    body = {"workspace_id": tenant.workspace_id, "observed_at": at(days_ago(0), 0, 6), "keys": listed}
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", body)).status_code == 204
    return Account(mgmt, keys)


def activity_body(
    tenant: Tenant, hash_: str, index: int, rows: list[Row], observed_at: datetime | None = None
) -> dict[str, Any]:
    """Key `index`'s rows as the worker reports them, every generated day replaced; BYOK on the third key."""
    body_rows = []
    for r in rows:
        if r.key != index:
            continue
        byok = (r.cost * D("0.95")) if index == 2 else D(0)
        body_rows.append(
            {
                "date": f"{r.day.isoformat()} 00:00:00",
                "model": r.offer.model,
                "model_permaslug": r.offer.model + "-2025",
                "endpoint_id": "e-" + r.offer.provider,
                "provider_name": r.offer.provider,
                "usage": r.cost - byok,
                "byok_usage_inference": byok,
                "requests": r.requests,
                "prompt_tokens": r.prompt,
                "completion_tokens": r.completion,
                "reasoning_tokens": r.completion // 10,
            }
        )
    return {
        "workspace_id": tenant.workspace_id,
        "observed_at": observed_at or at(days_ago(0), 0, 10),
        "api_key_hash": hash_,
        "dates": sorted({r.day.isoformat() for r in rows}),
        "rows": body_rows,
    }


async def send_one(ingest: Ingest, account: Account, body: dict[str, Any]) -> None:
    answer = await ingest.call("PUT", f"/internal/accounts/{account.management_key_id}/activity", body)
    assert answer.status_code == 204, answer.text


async def send_activity(
    ingest: Ingest, tenant: Tenant, account: Account, rows: list[Row], observed_at: datetime | None = None
) -> None:
    """Each key hash's report, one after the other."""
    for index, (_, hash_) in enumerate(account.keys):
        await send_one(ingest, account, activity_body(tenant, hash_, index, rows, observed_at))


# --- the independent computation --------------------------------------------------------------------------


def quantized(value: Fraction, places: str) -> Decimal:
    return (D(value.numerator) / D(value.denominator)).quantize(D(places), ROUND_HALF_EVEN)


def expected(
    rows: list[Row], first: date, last: date, previous_first: date, *, key_ids: list[str] | None = None
) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """Per (model, provider[, key]): tokens, cost and blended price summed directly; the split is the planted one
    where every row is priced by tokens alone (else null); the drift the planted ratio of the two periods."""
    groups: dict[tuple[str, str, str | None], dict[str, list[Row]]] = defaultdict(lambda: {"now": [], "before": []})
    for r in rows:
        key = key_ids[r.key] if key_ids else None
        if first <= r.day <= last:
            groups[(r.offer.model, r.offer.provider, key)]["now"].append(r)
        elif previous_first <= r.day < first:
            groups[(r.offer.model, r.offer.provider, key)]["before"].append(r)
    found = {}
    for group, periods in groups.items():
        now = periods["now"]
        if not now:
            continue
        cost = sum((r.cost for r in now), D(0))
        tokens = sum(r.prompt + r.completion for r in now)
        found[group] = {
            "requests": sum(r.requests for r in now),
            "prompt_tokens": sum(r.prompt for r in now),
            "completion_tokens": sum(r.completion for r in now),
            "cost_usd": cost,
            "usd_per_mtok": quantized(Fraction(cost) / tokens * MTOK, "0.000000001"),
            "rows": len(now),
            "before": periods["before"],
        }
    return found


# --- the report --------------------------------------------------------------------------------------------


def period() -> tuple[date, date, date]:
    """[first, last] of the reads, and the first day of the period before."""
    return days_ago(14), days_ago(1), days_ago(28)


async def seeded(ingest: Ingest, tenant: Tenant, seed: int = 17) -> tuple[Account, list[Row]]:
    first, last, before = period()
    days = [before + timedelta(days=n) for n in range((last - before).days + 1)]
    account = await linked_keys(ingest, tenant, 3)
    rows = generate(seed, days, 3, rise={CLAUDE: (first, D("1.25"))})
    await send_activity(ingest, tenant, account, rows)
    return account, rows


async def read(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    first, last, _ = period()
    query = {"from": first.isoformat(), "to": last.isoformat(), "per_page": 250, **params}
    r = await client.get(PATH, headers=tenant.headers, params=query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = json.loads(r.content, parse_float=Decimal)
    return body


def number(value: Any) -> Decimal | None:
    return None if value is None else D(str(value))


async def test_prices_match_an_independent_computation(client, ingest, alice):
    _, rows = await seeded(ingest, alice)
    first, last, before = period()
    body = await read(client, alice)
    assert (body["first_day"], body["last_day"]) == (first.isoformat(), last.isoformat())
    assert (body["previous_first_day"], body["previous_last_day"]) == (before.isoformat(), days_ago(15).isoformat())
    want = expected(rows, first, last, before)
    got = {(i["model"], i["provider"], i["key_id"]): i for i in body["items"]}
    assert got.keys() == want.keys()
    assert body["total"] == len(want)
    costs = [number(i["cost_usd"]) for i in body["items"]]
    assert costs == sorted(costs, reverse=True)  # type: ignore[type-var]
    for group, figures in want.items():
        row = got[group]
        for name in ("requests", "prompt_tokens", "completion_tokens"):
            assert row[name] == figures[name], (group, name)
        assert number(row["cost_usd"]) == figures["cost_usd"]
        assert number(row["usd_per_mtok"]) == figures["usd_per_mtok"], group
    offers = {(o.model, o.provider, None): o for o in OFFERS}
    for group, offer in offers.items():
        row = got[group]
        if offer.fee:
            # A per-request fee: no prompt/completion pair explains the costs, so no split is invented.
            assert (row["usd_per_mtok_prompt"], row["usd_per_mtok_completion"]) == (None, None)
            assert row["drift_basis"] == "blended"
            continue
        factor = D("1.25") if offer is CLAUDE else D(1)
        assert number(row["usd_per_mtok_prompt"]) == offer.prompt * factor * MTOK, group
        assert number(row["usd_per_mtok_completion"]) == offer.completion * factor * MTOK, group
        assert row["drift_basis"] == "split"
        assert number(row["drift_pct"]) == (D("25.00") if offer is CLAUDE else D("0.00")), group


async def test_per_key_rows_and_filters(client, ingest, alice):
    account, rows = await seeded(ingest, alice, seed=23)
    first, last, before = period()
    key_ids = [key for key, _ in account.keys]
    want = expected(rows, first, last, before, key_ids=key_ids)
    body = await read(client, alice, group_by="key")
    got = {(i["model"], i["provider"], i["key_id"]): i for i in body["items"]}
    assert got.keys() == want.keys()
    for group, figures in want.items():
        assert number(got[group]["usd_per_mtok"]) == figures["usd_per_mtok"], group
        assert number(got[group]["cost_usd"]) == figures["cost_usd"]

    one = await read(client, alice, key_id=key_ids[1])
    assert {i["key_id"] for i in one["items"]} == {key_ids[1]}
    assert {(i["model"], i["provider"]) for i in one["items"]} == {(m, p) for m, p, k in want if k == key_ids[1]}

    azure = await read(client, alice, model=GPT.model, provider="Azure")
    assert [(i["model"], i["provider"], i["key_id"]) for i in azure["items"]] == [(GPT.model, "Azure", None)]
    gpt = await read(client, alice, model=GPT.model)
    assert {i["provider"] for i in gpt["items"]} == {"OpenAI", "Azure"}
    assert (await read(client, alice, model="no/such-model"))["items"] == []

    page = await read(client, alice, per_page=2, page=2)
    everything = await read(client, alice)
    assert page["items"] == everything["items"][2:4]
    assert (page["total"], page["page"], page["per_page"]) == (everything["total"], 2, 2)
    past = await read(client, alice, per_page=2, page=50)
    assert (past["items"], past["total"]) == ([], everything["total"])


async def test_a_period_without_an_earlier_one_has_no_drift(client, ingest, alice):
    account = await linked_keys(ingest, alice, 1)
    await send_activity(ingest, alice, account, generate(5, [days_ago(3), days_ago(2)], 1, (GPT,)))
    (row,) = (await read(client, alice, **{"from": days_ago(3).isoformat(), "to": days_ago(2).isoformat()}))["items"]
    assert (row["drift_pct"], row["drift_basis"], row["previous_usd_per_mtok"]) == (None, None, None)
    assert row["usd_per_mtok"] is not None


async def test_other_workspaces_are_never_shown(client, ingest, alice, bob):
    await seeded(ingest, alice)
    empty = await read(client, bob)
    assert (empty["items"], empty["total"]) == ([], 0)
    alices_key = str((await linked_keys(ingest, alice, 1)).keys[0][0])
    assert_problem(await client.get(PATH, headers=bob.headers, params={"key_id": alices_key}), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-05-02", "to": "2026-05-01"},
        {"from": "1999-01-01"},
        {"from": "yesterday"},
        {"group_by": "provider"},
        {"per_page": "0"},
        {"per_page": "251"},
        {"page": "0"},
        {"model": "x\x00y"},
        {"model": "m" * 301},
        {"key_id": "not-a-uuid"},
    ],
)
async def test_bad_input_is_a_422_problem(client, alice, params):
    assert_problem(await client.get(PATH, headers=alice.headers, params=params), 422)


async def test_api_tokens_need_usage_read(client, alice, keyring):
    def token(*scopes: str) -> dict[str, str]:
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    assert "usage:read" in assert_problem(await client.get(PATH, headers=token("alerts:read")), 403)["detail"]
    assert (await client.get(PATH, headers=token("usage:read"))).status_code == 200
    assert_problem(await client.get(PATH), 401)


def sums(rows: list[tuple[int, int, Decimal]]) -> Sums:
    """A period's sums of (prompt tokens, completion tokens, cost) rows, as the repository gives them."""
    f = [(Fraction(p), Fraction(c), Fraction(y)) for p, c, y in rows]
    return Sums(
        rows=len(rows),
        requests=len(rows),
        prompt=sum(p for p, _, _ in rows),
        completion=sum(c for _, c, _ in rows),
        cost=sum((y for _, _, y in rows), D(0)),
        pp=sum((p * p for p, _, _ in f), Fraction(0)),
        pc=sum((p * c for p, c, _ in f), Fraction(0)),
        cc=sum((c * c for _, c, _ in f), Fraction(0)),
        py=sum((p * y for p, _, y in f), Fraction(0)),
        cy=sum((c * y for _, c, y in f), Fraction(0)),
        yy=sum((y * y for _, _, y in f), Fraction(0)),
    )


def priced(prompt: int, completion: int, p: str = "0.000002", c: str = "0.000008") -> tuple[int, int, Decimal]:
    return prompt, completion, D(p) * prompt + D(c) * completion


def test_a_split_is_given_only_when_the_rows_determine_it():
    assert sums([priced(1000, 200), priced(3000, 100)]).split() == (Fraction(2, 10**6), Fraction(8, 10**6))
    assert sums([priced(1000, 200)]).split() is None  # one row: any pair on a line fits
    assert sums([priced(1000, 200), priced(2000, 400), priced(500, 100)]).split() is None  # one mix, three sizes
    assert sums([priced(1000, 0), priced(2000, 0)]).split() is None  # no completion tokens
    # A per-request fee (or a cache discount) leaves no pair that fits every row.
    fee = [(p, c, y + D("0.01")) for p, c, y in (priced(1000, 200), priced(3000, 100), priced(800, 900))]
    assert sums(fee).split() is None
    # A cost rounded to OpenRouter's ten significant digits still fits.
    rounded = [(p, c, round(y, 10)) for p, c, y in (priced(1234, 567, "0.0000031"), priced(9876, 54, "0.0000031"))]
    assert sums(rounded).split() is not None


def test_drift_prices_the_new_mix_at_the_old_split_and_falls_back_to_blended():
    before = sums([priced(1000, 200), priced(3000, 100)])
    prompt_heavy = sums([priced(9000, 10), priced(8000, 40)])
    assert drift(prompt_heavy, before) == (Fraction(0), "split")  # same prices: no drift, though the blended price fell
    assert prompt_heavy.blended() < before.blended()  # type: ignore[operator]
    dearer = sums([priced(9000, 10, "0.0000025", "0.00001"), priced(8000, 40, "0.0000025", "0.00001")])
    assert drift(dearer, before) == (Fraction(1, 4), "split")
    one_row = sums([priced(1000, 200)])
    change, basis = drift(sums([priced(1000, 200, "0.000004", "0.000016")]), one_row)
    assert (change, basis) == (Fraction(1), "blended")
    assert drift(one_row, sums([])) == (None, None)


# --- the `price.drift` rule --------------------------------------------------------------------------------


def test_a_week_settles_the_day_after_it_ends():
    monday = date(2026, 11, 30)
    assert settled_week(monday + timedelta(days=1)) == monday - timedelta(days=7)  # Tuesday: last week
    assert settled_week(monday + timedelta(days=7)) == monday - timedelta(days=7)  # the next Monday: still it
    assert settled_week(monday + timedelta(days=8)) == monday  # the next Tuesday: the week after


async def drift_events(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/alerts", headers=tenant.headers, params={"per_page": 250})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["type"] == "price.drift"]


def two_weeks() -> tuple[date, list[date]]:
    week = settled_week(datetime.now(UTC).date())
    return week, [week - timedelta(days=7) + timedelta(days=n) for n in range(14)]


# The worker's daily run: hours after the activity reports (observed at 00:10 by default).
CRON_AT = at(days_ago(0), 6, 25)


async def evaluate(ingest: Ingest, service_headers: Any, when: datetime = CRON_AT) -> int:
    """The worker's cron: `POST /internal/price-drift` with its own token; how many events it raised."""
    r = await ingest.client.post(
        "/internal/price-drift", headers=service_headers("alerts:deliver"), json={"at": when.isoformat()}
    )
    assert r.status_code == 200, r.text
    return int(r.json()["raised"])


async def test_a_planted_rise_is_an_alert_once_and_flat_prices_are_not(
    client, ingest, alice, bob, service_headers, monkeypatch
):
    monkeypatch.setattr(prices_service, "CHUNK", 1)  # a workspace per chunk: the chunks' seams are crossed
    week, days = two_weeks()
    account = await linked_keys(ingest, alice, 2)
    # Claude costs 20 % more in the settled week; the others keep their prices while their mix leans to prompts
    # (a blended $/token falls or rises with the mix: that is no drift).
    offers = (GPT, GPT_AZURE, CLAUDE, FLASH)
    rows = generate(41, days, 2, offers, rise={CLAUDE: (week, D("1.2"))}, prompt_heavy_from=week)
    await send_activity(ingest, alice, account, rows)
    # Bob's identical figures: one run judges every workspace, each its own event.
    await send_activity(ingest, bob, await linked_keys(ingest, bob, 2), rows)
    assert await drift_events(client, alice) == []  # ingestion itself evaluates nothing
    assert await evaluate(ingest, service_headers) >= 2
    assert len(await drift_events(client, bob)) == 1
    (raised,) = await drift_events(client, alice)
    data = raised["data"]
    assert (data["model"], data["provider"]) == (CLAUDE.model, CLAUDE.provider)
    assert (data["drift_pct"], data["drift_basis"], data["threshold"]) == ("20.00", "split", 10)
    assert data["week"] == {"start": week.isoformat(), "end": (week + timedelta(days=7)).isoformat()}
    assert data["previous_week"]["start"] == (week - timedelta(days=7)).isoformat()
    assert D(data["usd_per_mtok_prompt"]) == CLAUDE.prompt * D("1.2") * MTOK
    # The next day's fetch (the same activity again) and run raise nothing more; nor does a repeated run.
    assert await evaluate(ingest, service_headers) == 0
    await send_activity(ingest, alice, account, rows, observed_at=at(days_ago(0), 0, 40))
    assert await evaluate(ingest, service_headers, CRON_AT + timedelta(days=1)) == 0
    assert len(await drift_events(client, alice)) == 1  # never Bob's either
    assert len(await drift_events(client, bob)) == 1


async def test_a_newly_linked_account_is_judged_on_all_its_keys(client, ingest, alice, service_headers):
    """The first key's report alone is never judged: a workspace whose reports are still arriving waits for
    the next run, which sees every key's rows."""
    week, days = two_weeks()
    account = await linked_keys(ingest, alice, 3)
    rows = generate(59, days, 3, (GPT, CLAUDE), rise={CLAUDE: (week, D("1.2"))})
    first_report = CRON_AT - timedelta(minutes=5)
    await send_one(ingest, account, activity_body(alice, account.keys[0][1], 0, rows, first_report))
    await evaluate(ingest, service_headers)
    assert await drift_events(client, alice) == []  # a sync under way: not judged yet
    for index, (_, hash_) in enumerate(account.keys[1:], start=1):
        await send_one(ingest, account, activity_body(alice, hash_, index, rows, first_report))
    await evaluate(ingest, service_headers, CRON_AT + timedelta(minutes=20))
    assert await drift_events(client, alice) == []  # the last report is under 30 minutes old
    await evaluate(ingest, service_headers, CRON_AT + timedelta(hours=1))
    (raised,) = await drift_events(client, alice)
    claude_week = [r for r in rows if r.offer is CLAUDE and r.day >= week]
    assert raised["data"]["requests"] == sum(r.requests for r in claude_week)  # every key's rows
    assert len({r.key for r in claude_week}) == 3
    assert raised["data"]["drift_pct"] == "20.00"


async def test_a_workspace_busy_at_every_run_is_judged_by_the_weeks_last_run(client, ingest, alice, service_headers):
    """A sync that always overlaps the cron: each run but the week's last (the Monday before the next week
    settles) leaves the workspace alone; that last one judges it anyway, once."""
    week, days = two_weeks()
    account = await linked_keys(ingest, alice, 1)
    rows = generate(61, days, 1, (GPT, CLAUDE), rise={CLAUDE: (week, D("1.2"))})
    runs = [at(week + timedelta(days=n), 6, 25) for n in range(8, 15)]  # Tuesday to Monday: this week's runs
    assert {settled_week(run.date()) for run in runs} == {week}
    assert settled_week(runs[-1].date() + timedelta(days=1)) != week
    for run in runs:
        await send_activity(ingest, alice, account, rows, observed_at=run - timedelta(minutes=5))
        raised = await evaluate(ingest, service_headers, run)
        if run != runs[-1]:
            assert (raised, await drift_events(client, alice)) == (0, []), run  # busy: not judged yet
    (event,) = await drift_events(client, alice)
    assert (event["data"]["model"], event["data"]["drift_pct"]) == (CLAUDE.model, "20.00")
    assert event["data"]["week"]["start"] == week.isoformat()
    assert await evaluate(ingest, service_headers, runs[-1] + timedelta(minutes=1)) == 0  # a retry: still once
    assert len(await drift_events(client, alice)) == 1


async def test_a_rise_under_the_threshold_or_a_rule_switched_off_raises_nothing(
    client, ingest, alice, bob, service_headers
):
    week, days = two_weeks()
    rows = generate(43, days, 1, (GPT, CLAUDE), rise={CLAUDE: (week, D("1.2"))})
    r = await client.put(
        "/api/v1/alert-rules", headers=alice.headers, json={"items": [{"rule": "price.drift", "enabled": False}]}
    )
    assert r.status_code == 200, r.text
    await send_activity(ingest, alice, await linked_keys(ingest, alice, 1), rows)
    items = [{"rule": "price.drift", "params": {"min_drift_pct": 25}}]
    assert (await client.put("/api/v1/alert-rules", headers=bob.headers, json={"items": items})).status_code == 200
    await send_activity(ingest, bob, await linked_keys(ingest, bob, 1), rows)
    await evaluate(ingest, service_headers)
    assert await drift_events(client, alice) == []
    assert await drift_events(client, bob) == []


async def test_runs_at_once_raise_the_drift_once(committed_ingest, committed_client, alice, service_headers):
    """Two workers' runs (or a retried one) at the same time: one event."""
    week, days = two_weeks()
    account = await linked_keys(committed_ingest, alice, 3)
    rows = generate(53, days, 3, (GPT, CLAUDE), rise={CLAUDE: (week, D("1.3"))})
    await send_activity(committed_ingest, alice, account, rows)
    await asyncio.gather(*(evaluate(committed_ingest, service_headers) for _ in range(3)))
    (raised,) = await drift_events(committed_client, alice)
    assert (raised["data"]["model"], raised["data"]["drift_pct"]) == (CLAUDE.model, "30.00")


async def test_a_price_cut_is_no_drift_alert(client, ingest, alice, service_headers):
    week, days = two_weeks()
    rows = generate(47, days, 1, (FLASH,), rise={FLASH: (week, D("0.5"))})
    await send_activity(ingest, alice, await linked_keys(ingest, alice, 1), rows)
    await evaluate(ingest, service_headers)
    assert await drift_events(client, alice) == []


async def test_the_run_takes_only_its_own_token_and_defaults_to_now(ingest, service_headers):
    r = await ingest.client.post("/internal/price-drift", headers=service_headers("usage:ingest"), json={})
    assert_problem(r, 403)
    r = await ingest.client.post("/internal/price-drift", headers=service_headers("alerts:deliver"))
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["raised"], int)
