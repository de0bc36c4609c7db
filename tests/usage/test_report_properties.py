"""Property: whatever the ingestion order, the daily rows, both rollups and every figure the read endpoints
give equal a naive reference computed in Python from the stored inputs (snapshots' days, key lists,
activity), so the incremental maintenance never drifts from a full recomputation."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.support.tenants import Tenant
from tests.usage.conftest import at, days_ago, item, snapshot, today

LABELS = ["sk-or-v1-aaa...001", "sk-or-v1-bbb...002"]
HASHES = ["a" * 64, "b" * 64]
MODELS = ["openai/gpt-4.1", "anthropic/claude", 'odd, "quoted" =model']
PROVIDERS = ["OpenAI", "Azure", None]
DAYS = 7  # today and the six days before

# Often the same few figures (so days turn final without their figure moving), else any exact amount.
amounts = st.one_of(
    st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)]),
    st.decimals(min_value=-2, max_value=50, places=10, allow_nan=False, allow_infinity=False),
)
snapshot_op = st.tuples(
    st.just("snapshot"),
    st.integers(0, 2),  # key
    st.integers(0, DAYS - 1),  # age in days
    st.integers(0, 23),  # hour
    st.sampled_from([*LABELS, *LABELS, None]),
    amounts,
    amounts,
    st.integers(0, 4).map(lambda n: n == 0),  # management key (the third key only)
)
key_list_op = st.tuples(
    st.just("keys"),
    st.sampled_from([0, 0, 0, 1]),  # management key
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=3),  # (hash, label)
)
activity_row = st.tuples(
    st.integers(1, DAYS - 1), st.sampled_from(MODELS), st.sampled_from(PROVIDERS), amounts, st.integers(0, 9)
)
activity_op = st.tuples(
    st.just("activity"),
    st.sampled_from([0, 0, 0, 1]),  # management key (mostly the one that lists keys most)
    st.integers(0, 1),  # hash
    st.sets(st.integers(1, DAYS - 1), max_size=4),
    st.lists(activity_row, min_size=1, max_size=6),
)
# Weighted towards what makes links and breakdowns: labelled snapshots, key lists, activity.
operations = st.lists(
    st.one_of(snapshot_op, key_list_op, activity_op, snapshot_op, activity_op), min_size=1, max_size=12
)


async def apply(ingest, tenant: Tenant, keys: list[str], mgmts: list[str], ops: list[Any]) -> None:
    for n, op in enumerate(ops):
        when = at(today(), 0, n, 1)  # each account answer newer than the one before
        if op[0] == "snapshot":
            _, k, age, hour, label, usage, daily, management = op
            body = snapshot(usage, daily, label=label, is_management_key=management and k == 2)
            await ingest.snapshots(item(keys[k], tenant.workspace_id, at(days_ago(age), hour, n), body))
        elif op[0] == "keys":
            _, m, rows = op
            listing = [{"hash": HASHES[h], "label": LABELS[label]} for h, label in rows]
            body = {"workspace_id": tenant.workspace_id, "observed_at": when, "keys": listing}
            assert (await ingest.call("PUT", f"/internal/accounts/{mgmts[m]}/keys", body)).status_code == 204
        else:
            _, m, h, ages, rows = op
            body = {
                "workspace_id": tenant.workspace_id,
                "observed_at": when,
                "api_key_hash": HASHES[h],
                "dates": [days_ago(a).isoformat() for a in sorted(ages)],
                "rows": [
                    {
                        "date": days_ago(a).isoformat(),
                        "model": model,
                        "provider_name": provider,
                        "usage": usage,
                        "byok_usage_inference": usage / 4,
                        "requests": requests,
                        "prompt_tokens": requests * 10,
                        "completion_tokens": requests * 3,
                        "reasoning_tokens": requests,
                    }
                    for a, model, provider, usage, requests in rows
                ],
            }
            assert (await ingest.call("PUT", f"/internal/accounts/{mgmts[m]}/activity", body)).status_code == 204


async def fetch(conn, sql: str, workspace_id: str) -> list[Any]:
    return list((await conn.execute(text(sql), {"w": uuid.UUID(workspace_id)})).all())


Row = tuple[Decimal, Decimal, int | None, int | None, int | None, int | None, bool]


async def reference(db_engine, workspace_id: str) -> dict[tuple[Any, ...], Row]:
    """The daily rows, computed naively from the stored inputs: links by the label rule, activity per
    (model, provider) on a linked key's fetched days, key_days' figure on every other day."""
    async with db_engine.connect() as conn:
        latest = await fetch(
            conn,
            "SELECT ks.key_id, s.label, s.is_management_key FROM usage.key_states ks JOIN usage.snapshots s "
            "ON s.key_id = ks.key_id AND s.observed_at = ks.latest_observed_at WHERE ks.workspace_id = :w",
            workspace_id,
        )
        listed = await fetch(
            conn,
            "SELECT management_key_id, hash, label, observed_at FROM usage.account_keys WHERE workspace_id = :w",
            workspace_id,
        )
        fetched = await fetch(
            conn,
            "SELECT management_key_id, api_key_hash, date FROM usage.activity_days WHERE workspace_id = :w",
            workspace_id,
        )
        activity = await fetch(
            conn,
            "SELECT management_key_id, api_key_hash, date, model, provider_name, usage, byok_usage_inference, "
            "requests, prompt_tokens, completion_tokens, reasoning_tokens FROM usage.activity WHERE workspace_id = :w",
            workspace_id,
        )
        key_days = await fetch(
            conn,
            "SELECT key_id, day, spend, byok_spend, final FROM usage.key_days WHERE workspace_id = :w",
            workspace_id,
        )
    links: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
    for key_id, label, management in latest:
        rows = [r for r in listed if r.label == label]
        if not management and label is not None and len({r.hash for r in rows}) == 1:
            chosen = sorted(rows, key=lambda r: (-r.observed_at.timestamp(), str(r.management_key_id)))[0]
            links[key_id] = (chosen.management_key_id, chosen.hash)
    event(f"linked keys: {len(links)}")
    expected: dict[tuple[Any, ...], list[Any]] = {}
    covered: set[tuple[uuid.UUID, Any]] = set()
    for key_id, (mgmt, hash_) in links.items():
        covered |= {(key_id, f.date) for f in fetched if (f.management_key_id, f.api_key_hash) == (mgmt, hash_)}
        for a in activity:
            if (a.management_key_id, a.api_key_hash) == (mgmt, hash_):
                slot = expected.setdefault(
                    (a.date, key_id, a.model, a.provider_name or ""), [Decimal(0), Decimal(0), 0, 0, 0, 0, False]
                )
                for i, value in enumerate(a[5:11]):
                    slot[i] += value
    for kd in key_days:
        if (kd.key_id, kd.day) not in covered:
            expected[(kd.day, kd.key_id, "", "")] = [kd.spend, kd.byok_spend, None, None, None, None, not kd.final]
    return {k: tuple(v) for k, v in expected.items()}  # type: ignore[misc,unused-ignore]


SORTS = [
    f"{sign}{field}"
    for field in ("date", "key_id", "model", "provider", "cost", "requests", "tokens")
    for sign in ("", "-")
]


def in_order(rows: dict[tuple[Any, ...], Row], sort: str) -> list[tuple[Any, ...]]:
    """The reference rows' keys in `sort`'s order: the field (no counts: -1), then date, key, model, provider;
    a descending sort reverses it all."""
    field = sort.lstrip("-")

    def key(k: tuple[Any, ...]) -> tuple[Any, ...]:
        v = rows[k]
        tokens = -1 if v[3] is None or v[4] is None else v[3] + v[4]
        fields = {"date": k[0], "key_id": str(k[1]), "model": k[2], "provider": k[3], "cost": v[0]}
        first = {**fields, "requests": -1 if v[2] is None else v[2], "tokens": tokens}[field]
        return (first, k[0], str(k[1]), k[2], k[3])

    return sorted(rows, key=key, reverse=sort.startswith("-"))


def group(rows: dict[tuple[Any, ...], Row], by: Callable[[tuple[Any, ...]], Any]) -> dict[Any, list[Any]]:
    """Sums per group: cost, byok, four counts (None counts as 0), rows, provisional rows."""
    out: dict[Any, list[Any]] = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0, 0, 0, 0, 0])
    for k, r in rows.items():
        g = out[by(k)]
        g[0] += r[0]
        g[1] += r[1]
        for i in range(2, 6):
            g[i] += r[i] or 0
        g[6] += 1
        g[7] += int(r[6])
    return dict(out)


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, sort=st.sampled_from(SORTS), per_page=st.integers(1, 4))
async def test_every_aggregate_equals_a_naive_reference(
    committed_ingest, committed_client, db_engine, tenant_factory, ops, sort, per_page
):
    tenant = tenant_factory()
    keys = [str(uuid.uuid4()) for _ in range(3)]
    mgmts = [str(uuid.uuid4()) for _ in range(2)]
    await apply(committed_ingest, tenant, keys, mgmts, ops)
    expected = await reference(db_engine, tenant.workspace_id)
    event("rows with a breakdown" if any(k[2] for k in expected) else "totals only")

    async with db_engine.connect() as conn:
        stored = await fetch(
            conn,
            "SELECT day, key_id, model, provider, cost, byok_cost, requests, prompt_tokens, completion_tokens, "
            "reasoning_tokens, provisional FROM usage.daily_usage WHERE workspace_id = :w",
            tenant.workspace_id,
        )
        key_totals = await fetch(
            conn,
            "SELECT key_id, day, cost, byok_cost, requests, prompt_tokens, completion_tokens, reasoning_tokens, rows, "
            "provisional FROM usage.daily_key_totals WHERE workspace_id = :w",
            tenant.workspace_id,
        )
        model_totals = await fetch(
            conn,
            "SELECT day, model, provider, cost, byok_cost, requests, prompt_tokens, completion_tokens, "
            "reasoning_tokens, rows, provisional_rows FROM usage.daily_model_totals WHERE workspace_id = :w",
            tenant.workspace_id,
        )
        months = await fetch(
            conn,
            "SELECT key_id, month, cost, byok_cost, cost_without_breakdown, requests, prompt_tokens, "
            "completion_tokens, reasoning_tokens, rows, breakdown_rows, provisional_rows "
            "FROM usage.monthly_key_totals WHERE workspace_id = :w",
            tenant.workspace_id,
        )
    assert {tuple(r[:4]): tuple(r[4:]) for r in stored} == expected

    by_key_day = group(expected, lambda k: (k[1], k[0]))
    assert {(r.key_id, r.day): [*r[2:9], r.provisional] for r in key_totals} == {
        g: [*v[:7], v[7] > 0] for g, v in by_key_day.items()
    }
    assert {tuple(r[:3]): list(r[3:]) for r in model_totals} == group(expected, lambda k: (k[0], k[2], k[3]))
    by_month = group(expected, lambda k: (k[1], k[0].replace(day=1)))
    no_breakdown = group({k: v for k, v in expected.items() if not k[2]}, lambda k: (k[1], k[0].replace(day=1)))
    assert {(r.key_id, r.month): list(r[2:]) for r in months} == {
        g: [v[0], v[1], no_breakdown.get(g, [Decimal(0)])[0], *v[2:7], v[6] - no_breakdown.get(g, [0] * 8)[6], v[7]]
        for g, v in by_month.items()
    }

    # The endpoints, over the whole window.
    window = {"from": days_ago(DAYS - 1).isoformat(), "to": today().isoformat()}
    r = await committed_client.get("/api/v1/usage/summary", headers=tenant.headers, params=window)
    assert r.status_code == 200, r.text
    summary = json.loads(r.content, parse_float=Decimal)
    total = group(expected, lambda k: None).get(None, [Decimal(0)] * 8)
    assert summary["totals"]["cost"] == total[0]
    assert summary["totals"]["byok_cost"] == total[1]
    assert summary["totals"]["rows"] == len(expected)
    assert summary["totals"]["cost_without_breakdown"] == sum(
        (v[0] for k, v in expected.items() if not k[2]), Decimal(0)
    )
    assert summary["totals"]["provisional"] == any(v[6] for v in expected.values())
    broken = [v for k, v in expected.items() if k[2]]
    assert summary["totals"]["requests"] == (sum(cast(int, v[2]) for v in broken) if broken else None)
    assert {(k["key_id"], k["cost"], k["byok_cost"], k["provisional"]) for k in summary["by_key"]} == {
        (str(g), v[0], v[1], v[7] > 0) for g, v in group(expected, lambda k: k[1]).items()
    }
    assert {(m["model"], m["cost"], m["prompt_tokens"]) for m in summary["by_model"]} == {
        (g or None, v[0], v[3] if g else None) for g, v in group(expected, lambda k: k[2]).items()
    }
    assert {(d["date"], d["cost"], d["provisional"]) for d in summary["by_day"]} == {
        (g.isoformat(), v[0], v[7] > 0) for g, v in group(expected, lambda k: k[0]).items()
    }
    assert {(d["date"], d["model"], d["cost"], d["byok_cost"]) for d in summary["by_day_model"]} == {
        (g[0].isoformat(), g[1] or None, v[0], v[1]) for g, v in group(expected, lambda k: (k[0], k[2])).items()
    }

    # Every daily row, in order, and the totals of filtered pages.
    r = await committed_client.get("/api/v1/usage/daily", headers=tenant.headers, params={**window, "per_page": 250})
    page = json.loads(r.content, parse_float=Decimal)
    assert page["total"] == len(expected)
    assert [
        (i["date"], i["key_id"], i["model"] or "", i["provider"] or "" if i["model"] else "") for i in page["items"]
    ] == [
        (k[0].isoformat(), str(k[1]), k[2], k[3]) for k in sorted(expected, key=lambda k: (k[0], str(k[1]), k[2], k[3]))
    ]
    for key in keys[:2]:
        for model in (None, MODELS[0]):
            params = {**window, "per_page": 1, "key_id": key, **({"model": model} if model else {})}
            r = await committed_client.get("/api/v1/usage/daily", headers=tenant.headers, params=params)
            want = sum(1 for k in expected if str(k[1]) == key and (model is None or k[2] == model))
            if r.status_code == 404:  # a key never snapshotted
                assert want == 0
            else:
                assert r.json()["total"] == want
    r = await committed_client.get("/api/v1/usage/export", headers=tenant.headers, params={**window, "format": "json"})
    assert json.loads(r.content, parse_float=Decimal) == page["items"]

    # Walking the cursors of one sort yields exactly the reference rows in that order, each once.
    walked: list[tuple[Any, ...]] = []
    walk: dict[str, Any] = {**window, "sort": sort, "per_page": per_page}
    while True:
        r = await committed_client.get("/api/v1/usage/daily", headers=tenant.headers, params=walk)
        assert r.status_code == 200, r.text
        body = json.loads(r.content, parse_float=Decimal)
        assert body["total"] == len(expected)
        assert body["page"] == len(walked) // per_page + 1
        walked += [
            (i["date"], i["key_id"], i["model"] or "", i["provider"] or "" if i["model"] else "") for i in body["items"]
        ]
        if body["next_cursor"] is None:
            break
        walk["cursor"] = body["next_cursor"]
    assert walked == [(k[0].isoformat(), str(k[1]), k[2], k[3]) for k in in_order(expected, sort)]
