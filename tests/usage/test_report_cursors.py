"""`/daily`'s cursors: walking `next_cursor` gives exactly the page-ordered rows for every sort, any page by
`page` (also read from the far end) equals the walk's, and a cursor works only with the query that made it."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from owr_usage.reports.cursors import encode
from owr_usage.reports.repository import RowFilter, Sort
from tests.support.http import assert_problem
from tests.usage.conftest import days_ago, today
from tests.usage.test_accounts import activity_row
from tests.usage.test_reports import activity, get, key_with_days, link, span

SORTS = ["date", "key_id", "model", "provider", "cost", "requests", "tokens"]


async def walk(client, tenant, **params: Any) -> list[dict[str, Any]]:
    """Every page from the first, by `next_cursor`; checks each page's number and that the last ends it."""
    body = await get(client, tenant, "daily", **params)
    items, number, first_total = list(body["items"]), 1, body["total"]
    while body["next_cursor"] is not None:
        assert len(body["items"]) == params["per_page"]
        body = await get(client, tenant, "daily", cursor=body["next_cursor"], **params)
        number += 1
        assert body["page"] == number
        assert body["total"] == first_total
        items += body["items"]
    return items


def row_id(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["date"], row["key_id"], row["model"], row["provider"])


def naive_key(field: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The documented order: the field (a row without counts as -1), then date, key, model, provider."""
    model, provider = row["model"] or "", row["provider"] if row["model"] else ""
    tokens = -1 if row["prompt_tokens"] is None else row["prompt_tokens"] + row["completion_tokens"]
    value = {
        "date": row["date"],
        "key_id": row["key_id"],
        "model": model,
        "provider": provider,
        "cost": row["cost"],
        "requests": -1 if row["requests"] is None else row["requests"],
        "tokens": tokens,
    }[field]
    return (value, row["date"], row["key_id"], model, provider)


async def spread(ingest, tenant) -> None:
    """Rows with ties in every sort: unlinked keys spending the same amounts, and a linked key's activity with
    repeated request counts, several models and providers, and rows without counts."""
    for n in range(3):
        await key_with_days(ingest, tenant, f"sk-or-v1-cur...00{n}", spends={3: "1", 2: str(n), 1: "0.25"})
    label, hash_, mgmt = "sk-or-v1-cur...lnk", "c0" * 32, str(uuid.uuid4())
    await key_with_days(ingest, tenant, label, spends={3: "2", 2: "2", 1: "2"})
    await link(ingest, tenant, mgmt, hash_, label)
    d3, d2 = days_ago(3).isoformat(), days_ago(2).isoformat()
    rows = [
        activity_row(day, model, cost, provider_name=provider, requests=requests, prompt_tokens=requests * 7)
        for day in (d3, d2)
        for model, cost, provider, requests in [
            ("openai/gpt-4.1", "0.5", "OpenAI", 5),
            ("openai/gpt-4.1", "0.25", "Azure", 5),
            ("anthropic/claude", "1", "Anthropic", 2),
            ("=odd", "0.5", None, 0),
        ]
    ]
    await activity(ingest, tenant, mgmt, hash_, [d3, d2], rows)


@pytest.mark.parametrize("field", SORTS)
async def test_walking_the_cursors_gives_every_row_once_in_order(client, ingest, alice, field):
    await spread(ingest, alice)
    for sort in (field, "-" + field):
        everything = (await get(client, alice, "daily", sort=sort, per_page=250, **span(4)))["items"]
        assert len(everything) == 3 * 4 + 2 * 4 + 2  # unlinked key days; activity rows; the linked key's other days
        expected = sorted(everything, key=lambda r: naive_key(field, r), reverse=sort.startswith("-"))
        assert [row_id(r) for r in everything] == [row_id(r) for r in expected]
        for per_page in (1, 4, 7):
            walked = await walk(client, alice, sort=sort, per_page=per_page, **span(4))
            assert walked == everything
            # Every page by number, the later ones read from the far end, equals the walk's.
            pages = -(-len(everything) // per_page)
            by_page = []
            for number in range(1, pages + 2):
                body = await get(client, alice, "daily", sort=sort, per_page=per_page, page=number, **span(4))
                assert (body["next_cursor"] is None) == (number >= pages)
                by_page += body["items"]
            assert by_page == everything


async def test_a_cursor_continues_only_its_own_query(client, ingest, alice, bob):
    await spread(ingest, alice)
    await spread(ingest, bob)
    query = {"sort": "-cost", "per_page": 3, **span(4)}
    first = await get(client, alice, "daily", **query)
    cursor = first["next_cursor"]
    second = await get(client, alice, "daily", cursor=cursor, **query)
    assert second["page"] == 2
    assert second["items"] == (await get(client, alice, "daily", page=2, **query))["items"]
    assert (await get(client, alice, "daily", cursor=cursor, page=2, **query))["items"] == second["items"]

    padded = cursor + "=" * (-len(cursor) % 4)
    body = json.loads(base64.urlsafe_b64decode(padded))
    body["p"][0] = str(Decimal(body["p"][0]) + 1)  # an edited position
    edited = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
    refused: list[tuple[Any, dict[str, Any]]] = [
        (alice, {**query, "cursor": edited}),
        (alice, {**query, "cursor": cursor[:-2]}),
        (alice, {**query, "cursor": "not a cursor"}),
        (alice, {**query, "cursor": base64.urlsafe_b64encode(b"[1, 2]").decode()}),
        (alice, {**query, "cursor": "x" * 1025}),
        (alice, {**query, "cursor": cursor, "page": 3}),  # disagrees with the cursor's page
        (alice, {**query, "cursor": cursor, "sort": "cost"}),
        (alice, {**query, "cursor": cursor, "per_page": 4}),
        (alice, {**query, "cursor": cursor, **span(5)}),
        (alice, {**query, "cursor": cursor, "model": "openai/gpt-4.1"}),
        (bob, {**query, "cursor": cursor}),  # another workspace's cursor reads nothing of either
    ]
    for tenant, params in refused:
        r = await client.get("/api/v1/usage/daily", headers=tenant.headers, params=params)
        problem = assert_problem(r, 422)
        if len(params["cursor"]) <= 1024:
            assert problem["type"].endswith("/invalid-cursor")
            assert params["cursor"] not in r.text  # never echoed


async def test_the_last_cursor_and_a_page_past_the_end_have_no_next(client, ingest, alice):
    await spread(ingest, alice)
    assert (await get(client, alice, "daily", per_page=250, **span(4)))["next_cursor"] is None
    assert (await get(client, alice, "daily", page=99, **span(4)))["next_cursor"] is None
    empty = await get(client, alice, "daily", sort="-tokens", **span(30, 20))
    assert (empty["items"], empty["total"], empty["next_cursor"]) == ([], 0, None)


async def test_a_crafted_cursor_is_a_position_among_ones_own_rows_or_a_422(client, ingest, alice, bob):
    """The digest has no secret, so a client can write a cursor: whatever it holds, the answer is a page of the
    caller's rows or a 422, never a 500."""
    await spread(ingest, alice)
    await spread(ingest, bob)
    rows = RowFilter(uuid.UUID(bob.workspace_id), days_ago(4), today())
    query = {"sort": "-cost", "per_page": 3, **span(4)}

    def crafted(position: list[Any], sort: Sort = Sort("cost", descending=True)) -> str:
        return encode(rows, sort, 3, position, 3)

    anywhere = crafted(["100", days_ago(9).isoformat(), str(uuid.uuid4()), "zzz", ""])
    body = await get(client, bob, "daily", cursor=anywhere, **query)
    assert {r["key_id"] for r in body["items"]} <= {r["key_id"] for r in (await get(client, bob, "daily"))["items"]}
    assert body["items"] == (await get(client, bob, "daily", **query))["items"]  # 100 is above every cost
    key, day = str(uuid.uuid4()), days_ago(1).isoformat()
    for cursor, params in [
        (crafted(["1E+99999999", day, key, "", ""]), query),
        (crafted(["NaN", day, key, "", ""]), query),
        (crafted([0.5, day, key, "", ""]), query),
        (crafted(["1", day, key, "\ud800", ""]), query),
        (crafted(["1", day, key, "m" * 301, ""]), query),
        (crafted(["1", "2026-02-30", key, "", ""]), query),
        (crafted(["1", day, "not-a-uuid", "", ""]), query),
        (crafted([2**70, day, key, "", ""], Sort("requests", descending=True)), {**query, "sort": "-requests"}),
        (crafted([True, day, key, "", ""], Sort("tokens", descending=True)), {**query, "sort": "-tokens"}),
    ]:
        assert_problem(
            await client.get("/api/v1/usage/daily", headers=bob.headers, params={**params, "cursor": cursor}), 422
        )
