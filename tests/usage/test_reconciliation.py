"""Reconciliation (`GET /api/v1/insights/reconciliation`, issue 17): generated `/key` snapshots and activity sent
through the real ingestion routes; agreeing figures list nothing, planted gaps above 1e-6 are listed and those
below are not, days with one figure only are never compared, BYOK is compared on its own, other workspaces never
show, bad input is a 422 problem, the operator counter counts each gap once, the workspace exposition carries
yesterday's difference per key, and the summary's days say their source."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import assert_problem, bearer
from tests.support.tenants import Tenant
from tests.usage.conftest import Ingest, at, days_ago, item, snapshot, today, window
from tests.usage.test_accounts import activity_report, activity_row, key_row

D = Decimal
PATH = "/api/v1/insights/reconciliation"
MICRO = D("0.000001")


def gaps_counted() -> float:
    return REGISTRY.get_sample_value("owr_usage_reconciliation_gaps_total") or 0.0


class LinkedKey:
    """A key of `tenant` linked to an account row, with helpers that send what the worker would."""

    def __init__(self, ingest: Ingest, tenant: Tenant) -> None:
        self.ingest, self.tenant = ingest, tenant
        self.key_id = str(uuid.uuid4())
        self.mgmt = str(uuid.uuid4())
        self.hash = uuid.uuid4().hex * 2
        self.label = f"sk-or-v1-{uuid.uuid4().hex[:3]}...{uuid.uuid4().hex[:3]}"

    async def snapshots(self, spend: dict[date, Decimal], byok: dict[date, Decimal] | None = None) -> None:
        """One snapshot early on each day from the first of `spend` to today: lifetime figures at the day's start
        (`usage_daily` 0), so each completed day's final spend is exactly `spend[day]`."""
        byok = byok or {}
        first = min(spend)
        lifetime, lifetime_byok, items = D(0), D(0), []
        for n in range((today() - first).days + 1):
            day = first + timedelta(days=n)
            body = snapshot(lifetime, "0", byok_usage=lifetime_byok, label=self.label)
            items.append(item(self.key_id, self.tenant.workspace_id, at(day, 0, 30), body))
            lifetime += spend.get(day, D(0))
            lifetime_byok += byok.get(day, D(0))
        await self.ingest.snapshots(*items)

    async def link(self) -> None:
        listing = {
            "workspace_id": self.tenant.workspace_id,
            "observed_at": at(today(), 0, 40),
            "keys": [key_row(self.hash, self.label)],
        }
        r = await self.ingest.call("PUT", f"/internal/accounts/{self.mgmt}/keys", listing)
        assert r.status_code == 204, r.text

    async def activity(self, rows: list[dict[str, Any]], dates: list[date], *, minute: int = 50) -> None:
        body = activity_report(
            self.tenant,
            self.hash,
            observed_at=at(today(), 0, minute),
            rows=rows,
            dates=[d.isoformat() for d in dates],
        )
        r = await self.ingest.call("PUT", f"/internal/accounts/{self.mgmt}/activity", body)
        assert r.status_code == 204, r.text


def usage_rows(day: date, total: Decimal, *, byok: Decimal = D(0), parts: int = 3) -> list[dict[str, Any]]:
    """`total` split over several (model, provider) rows, as activity reports a day; exact to the last digit."""
    rng = random.Random(f"{day}{total}")
    cuts = sorted(D(rng.randint(1, 10**9)) / D(10**10) * total for _ in range(parts - 1))
    amounts = [b - a for a, b in zip([D(0), *cuts], [*cuts, total], strict=True)]
    rows = []
    for n, amount in enumerate(amounts):
        byok_part = byok if n == 0 else D(0)
        rows.append(
            activity_row(
                day.isoformat(),
                f"model/{n % 2}",
                "0",
                provider_name=f"P{n}",
                endpoint_id=f"e{n}",
                byok_usage_inference=byok_part,
            )
            | {"usage": amount}
        )
    assert sum((r["usage"] for r in rows), D(0)) == total
    return rows


async def read(client: httpx.AsyncClient, tenant: Tenant, expect: int = 200, **params: Any) -> dict[str, Any]:
    r = await client.get(PATH, headers=tenant.headers, params=params)
    assert r.status_code == expect, r.text
    body: dict[str, Any] = json.loads(r.content, parse_float=Decimal)
    return body


def by_day(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["day"]: i for i in body["items"]}


async def test_agreeing_figures_list_nothing(ingest, client, alice):
    key = LinkedKey(ingest, alice)
    rng = random.Random(17)
    days = [days_ago(n) for n in range(10, 0, -1)]
    spend = {d: D(rng.randint(0, 10**12)) / D(10**10) for d in days}
    await key.snapshots(spend)
    await key.link()
    await key.activity([row for d in days for row in usage_rows(d, spend[d])], days)

    body = await read(client, alice, **window(days_ago(10)))
    assert (body["items"], body["total"]) == ([], 0)
    assert (body["first_day"], body["last_day"]) == (days_ago(10).isoformat(), days_ago(1).isoformat())


async def test_gaps_over_a_millionth_are_listed_exactly_and_smaller_ones_are_not(ingest, client, alice):
    key = LinkedKey(ingest, alice)
    d5, d4, d3, d2, d1 = (days_ago(n) for n in (5, 4, 3, 2, 1))
    spend = {d5: D("1.2345678901"), d4: D("2"), d3: D("0.5"), d2: D("3.0000000001"), d1: D("0.25")}
    # Activity's sums: d5 short by 1.1e-6 (listed), d4 over by 0.4e-6 (not), d3 off by exactly 1e-6 (not: "over"),
    # d2 over by 2.5 (listed, negative gap), d1 equal.
    activity = {d5: spend[d5] - D("0.0000011"), d4: D("2.0000004"), d3: D("0.5") - MICRO, d2: D("5.5000000001")}
    activity[d1] = spend[d1]
    await key.snapshots(spend)
    await key.link()
    await key.activity([row for d, total in activity.items() for row in usage_rows(d, total)], list(activity))

    body = await read(client, alice, **window(d5))
    assert body["total"] == 2
    assert [i["day"] for i in body["items"]] == [d2.isoformat(), d5.isoformat()]  # newest first
    gaps = by_day(body)
    first = gaps[d5.isoformat()]
    assert (first["key_id"], first["label"]) == (key.key_id, key.label)
    assert (first["snapshot_usd"], first["activity_usd"]) == (spend[d5], activity[d5])
    assert first["gap_usd"] == D("0.0000011")
    assert gaps[d2.isoformat()]["gap_usd"] == D("-2.5")
    assert gaps[d2.isoformat()]["byok_gap_usd"] == 0

    # Pages, and the key filter.
    page = await read(client, alice, **window(d5), per_page=1, page=2)
    assert ([i["day"] for i in page["items"]], page["total"], page["per_page"]) == ([d5.isoformat()], 2, 1)
    past = await read(client, alice, **window(d5), per_page=1, page=3)
    assert (past["items"], past["total"]) == ([], 2)
    assert (await read(client, alice, **window(d5), key_id=key.key_id))["total"] == 2
    other = LinkedKey(ingest, alice)
    await other.snapshots({d2: D(1)})
    assert (await read(client, alice, **window(d5), key_id=other.key_id))["total"] == 0
    # The range applies: d5 alone.
    assert [i["day"] for i in (await read(client, alice, **window(d5, d4)))["items"]] == [d5.isoformat()]


async def test_days_with_one_figure_only_are_never_compared(ingest, client, alice):
    key = LinkedKey(ingest, alice)
    d6, d5, d4, d3, d2, d1 = (days_ago(n) for n in (6, 5, 4, 3, 2, 1))
    # Snapshots from d4 on: d6 and d5 come before the key's first snapshot (no snapshot figure).
    await key.snapshots({d4: D("1"), d3: D("0.75"), d2: D("2"), d1: D("4")})
    await key.link()
    # Activity: d6 and d5 (no snapshot figure: not compared, whatever they say), d3 fetched without rows (a
    # known 0 against 0.75: listed), d2 not fetched (no activity figure: not compared), d1 agrees.
    rows = usage_rows(d6, D("9")) + usage_rows(d5, D("9")) + usage_rows(d4, D("1")) + usage_rows(d1, D("4"))
    await key.activity(rows, [d6, d5, d4, d3, d1])

    body = await read(client, alice, **window(d6))
    assert [(i["day"], i["snapshot_usd"], i["activity_usd"]) for i in body["items"]] == [(d3.isoformat(), D("0.75"), 0)]


async def test_today_is_provisional_and_never_listed(ingest, client, alice):
    key = LinkedKey(ingest, alice)
    d1, d0 = days_ago(1), today()
    await key.snapshots({d1: D("1"), d0: D("3")})
    await key.link()
    # Even were activity to carry today (it never does), today's snapshot figure is provisional.
    await key.activity(usage_rows(d1, D("1")) + usage_rows(d0, D("7")), [d1, d0])
    assert (await read(client, alice, **window(d1, d0)))["items"] == []


async def test_byok_is_compared_on_its_own(ingest, client, alice):
    """The contract: `/key`'s `usage` is what OpenRouter charges (the 5 % fee of a BYOK request included) and
    `byok_usage` the provider's cost billed to the user's own key; activity splits the same way (`usage`,
    `byok_usage_inference`). Each pair is compared on its own."""
    key = LinkedKey(ingest, alice)
    d3, d2, d1 = days_ago(3), days_ago(2), days_ago(1)
    fee = {d3: D("0.05"), d2: D("0.1"), d1: D("0.02")}
    provider = {d3: D("1"), d2: D("2"), d1: D("0.4")}
    await key.snapshots(fee, byok=provider)
    await key.link()
    # d3 and d2 agree in both figures; d1's BYOK figure differs by 3e-6, its charged figure not at all.
    activity_byok = {d3: provider[d3], d2: provider[d2], d1: provider[d1] + D("0.000003")}
    rows = [row for d in (d3, d2, d1) for row in usage_rows(d, fee[d], byok=activity_byok[d])]
    await key.activity(rows, [d3, d2, d1])

    [gap] = (await read(client, alice, **window(d3)))["items"]
    assert (gap["day"], gap["gap_usd"], gap["byok_gap_usd"]) == (d1.isoformat(), 0, D("-0.000003"))
    assert (gap["snapshot_byok_usd"], gap["activity_byok_usd"]) == (provider[d1], activity_byok[d1])


async def test_other_workspaces_never_show(ingest, client, alice, bob):
    d2, d1 = days_ago(2), days_ago(1)
    bobs = LinkedKey(ingest, bob)
    await bobs.snapshots({d2: D("1"), d1: D("1")})
    await bobs.link()
    await bobs.activity(usage_rows(d2, D("2")) + usage_rows(d1, D("3")), [d2, d1])
    assert (await read(client, bob, **window(d2)))["total"] == 2
    assert (await read(client, alice, **window(d2)))["items"] == []
    problem = assert_problem(await client.get(PATH, headers=alice.headers, params={"key_id": bobs.key_id}), 404)
    assert problem["type"].endswith("key-not-found")


async def test_bad_input_is_a_422_problem(client, alice):
    yesterday = days_ago(1)
    cases: list[dict[str, Any]] = [
        {"from": "2026-13-01"},
        {"from": yesterday.isoformat(), "to": days_ago(3).isoformat()},
        {"to": (today() + timedelta(days=1)).isoformat()},
        {"from": days_ago(400).isoformat()},
        {"from": days_ago(367).isoformat(), "to": yesterday.isoformat()},
        {"key_id": "not-a-uuid"},
        {"per_page": 251},
        {"page": 0},
    ]
    for params in cases:
        r = await client.get(PATH, headers=alice.headers, params=params)
        assert_problem(r, 422)


async def test_api_tokens_need_usage_read(client, alice, keyring):
    def token(*scopes: str) -> dict[str, str]:
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    assert_problem(await client.get(PATH, headers=token("alerts:read", "keys:read")), 403)
    assert (await client.get(PATH, headers=token("usage:read"))).status_code == 200
    assert_problem(await client.get(PATH), 401)


async def test_the_operator_counter_counts_each_gap_as_it_appears(ingest, alice):
    key = LinkedKey(ingest, alice)
    d3, d2, d1 = days_ago(3), days_ago(2), days_ago(1)
    spend = {d3: D("1"), d2: D("2"), d1: D("3")}
    await key.snapshots(spend)
    await key.link()
    start = gaps_counted()
    # Two of three days disagree: two gaps.
    await key.activity(usage_rows(d3, D("1")) + usage_rows(d2, D("2.1")) + usage_rows(d1, D("2.9")), [d3, d2, d1])
    assert gaps_counted() - start == 2
    # The same answer again, and a below-threshold change: nothing new.
    await key.activity(usage_rows(d2, D("2.1")), [d2], minute=51)
    await key.activity(usage_rows(d3, D("1.0000001")), [d3], minute=52)
    assert gaps_counted() - start == 2
    # d2 is repaired, then breaks again: one more; a snapshot that moves d1's figure keeps it a gap: none.
    await key.activity(usage_rows(d2, D("2")), [d2], minute=53)
    await key.activity(usage_rows(d2, D("1")), [d2], minute=54)
    assert gaps_counted() - start == 3
    later = snapshot(D("6.5"), "0", label=key.label)
    await ingest.snapshots(item(key.key_id, alice.workspace_id, at(today(), 0, 31), later))
    assert gaps_counted() - start == 3


async def test_the_summary_days_say_which_figure_they_come_from(committed_client, committed_ingest, tenant_factory):
    tenant = tenant_factory()
    linked, unlinked = LinkedKey(committed_ingest, tenant), LinkedKey(committed_ingest, tenant)
    d2, d1 = days_ago(2), days_ago(1)
    await linked.snapshots({d2: D("1"), d1: D("2")})
    await linked.link()
    await linked.activity(usage_rows(d2, D("1")), [d2])
    await unlinked.snapshots({d1: D("5")})

    r = await committed_client.get("/api/v1/usage/summary", headers=tenant.headers, params=window(d2))
    assert r.status_code == 200, r.text
    sources = {d["date"]: d["source"] for d in r.json()["by_day"]}
    # d2: the linked key's fetched day only; d1: one key from activity's absence (snapshots) and one unlinked;
    # today: provisional snapshots.
    assert sources == {d2.isoformat(): "activity", d1.isoformat(): "snapshots", today().isoformat(): "snapshots"}
    await linked.activity(usage_rows(d1, D("2")), [d1], minute=51)
    r = await committed_client.get("/api/v1/usage/summary", headers=tenant.headers, params=window(d2))
    assert {d["date"]: d["source"] for d in r.json()["by_day"]}[d1.isoformat()] == "mixed"


async def test_the_workspace_exposition_carries_yesterdays_difference_per_compared_key(ingest, client, alice, bob):
    d2, d1 = days_ago(2), days_ago(1)
    off, even, unlinked = LinkedKey(ingest, alice), LinkedKey(ingest, alice), LinkedKey(ingest, alice)
    for key in (off, even):
        await key.snapshots({d2: D("1"), d1: D("2.5")})
        await key.link()
    await off.activity(usage_rows(d2, D("7")) + usage_rows(d1, D("2.4999")), [d2, d1])
    await even.activity(usage_rows(d1, D("2.5")), [d1])
    await unlinked.snapshots({d1: D("3")})
    bobs = LinkedKey(ingest, bob)
    await bobs.snapshots({d1: D("1")})
    await bobs.link()
    await bobs.activity(usage_rows(d1, D("9")), [d1])

    r = await client.get("/api/v1/metrics", headers=alice.headers)
    assert r.status_code == 200, r.text
    [family] = [f for f in text_string_to_metric_families(r.text) if f.name == "owr_key_reconciliation_gap_usd"]
    values = {s.labels["key_id"]: s.value for s in family.samples}
    # Yesterday only (d2's gap of 6 is not here); a compared key without a gap is 0; an unlinked key and bob's
    # key are absent.
    assert values == {off.key_id: 0.0001, even.key_id: 0.0}
    # The name is the account row's (`key_row`'s "Customer Key"), as on every series of the key.
    assert {s.labels["key_name"] for s in family.samples} == {"Customer Key"}
