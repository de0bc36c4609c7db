"""The OpenRouter emulator over real HTTP: CONTRACT.md's bodies, the UTC windows, /activity's completed days,
paging, auth errors, faults, exact money and the virtual clock's Date header."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tools.devinfra import ROOT
from tools.emulator import running_emulator
from tools.emulator.seed import DEMO_KEYS
from tools.emulator.state import (
    EmulatorState,
    Event,
    EventIndex,
    activity_days,
    day_start,
    key_label,
    limit_window_start,
    money_text,
    month_start,
    week_start,
)

EXAMPLES_FILE = Path(__file__).with_name("openrouter_contract_examples.json")
CONTRACT_FILE = ROOT.parent / "shared" / "openrouter" / "CONTRACT.md"
WEDNESDAY = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)  # week from Mon 13 April, month from Wed 1 April


def examples() -> dict[str, Any]:
    data = json.loads(EXAMPLES_FILE.read_text())
    return {e["name"]: e["body"] for e in data["examples"]} | {s["name"]: s["text"] for s in data["strings"]}


def loads(response: httpx.Response) -> Any:
    """The body with money as Decimal, as the worker parses it."""
    return json.loads(response.text, parse_float=Decimal)


class Admin:
    """The emulator's admin API, over HTTP."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(method, f"/_admin{path}", json=body)
        assert response.status_code == expect, response.text
        return loads(response) if response.content else None

    async def clock(self, now: datetime) -> None:
        await self.call("POST", "/clock", {"now": now.isoformat()})

    async def account(self, total_credits: str | int = 100) -> str:
        return str((await self.call("POST", "/accounts", {"name": "t", "total_credits": total_credits}, 201))["id"])

    async def key(self, account: str, kind: str = "inference", **settings: Any) -> dict[str, Any]:
        body = {"kind": kind, **settings}
        items = (await self.call("POST", f"/accounts/{account}/keys", body, 201))["items"]
        return dict(items[0])

    async def events(self, *events: dict[str, Any]) -> None:
        await self.call("POST", "/events", {"events": list(events)}, 201)

    async def faults(self, **config: Any) -> None:
        await self.call("PUT", "/faults", config)


@pytest.fixture(scope="module")
async def emu():
    async with running_emulator() as running:
        yield running


@pytest.fixture
async def client(emu):
    emu.emulator.reset()
    async with httpx.AsyncClient(base_url=emu.url, timeout=5) as http:
        yield http


@pytest.fixture
def admin(client):
    return Admin(client)


def bearer(key: dict[str, Any] | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key if isinstance(key, str) else key['key']}"}


async def world(admin: Admin) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An account with a management key and an inference key (limit 100 monthly), clock on WEDNESDAY."""
    await admin.clock(WEDNESDAY)
    account = await admin.account("100.5")
    manager = await admin.key(account, "management")
    key = await admin.key(account, limit=100, limit_reset="monthly")
    return account, manager, key


def event(key: dict[str, Any], at: datetime, cost: str, **extra: Any) -> dict[str, Any]:
    return {"key_hash": key["hash"], "at": at.isoformat(), "model": "openai/gpt-4.1", "cost": cost, **extra}


# ---------------------------------------------------------------- CONTRACT.md's examples

_FORMATS = (
    ("timestamp", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")),
    ("activity date", re.compile(r"\d{4}-\d\d-\d\d 00:00:00")),
    ("uuid", re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ("hash", re.compile(r"[0-9a-f]{64}")),
    ("label", re.compile(r"sk-or-v1-[0-9a-f]{3}\.\.\.[0-9a-f]{3}")),
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    kinds: dict[type, str] = {str: "string", dict: "object", list: "array"}
    return kinds[type(value)]


def _format(text: str) -> str:
    return next((name for name, pattern in _FORMATS if pattern.fullmatch(text)), "text")


def assert_same_shape(example: Any, actual: Any, path: str = "$") -> None:
    """Every example field is there with the same JSON type and string format (extra fields are allowed)."""
    assert _kind(actual) == _kind(example), f"{path}: {_kind(actual)} where the contract has {_kind(example)}"
    if isinstance(example, dict):
        missing = set(example) - set(actual)
        assert not missing, f"{path}: missing {sorted(missing)}"
        for name, value in example.items():
            assert_same_shape(value, actual[name], f"{path}.{name}")
    elif isinstance(example, list) and example:
        assert actual, f"{path}: empty where the contract shows rows"
        for n, item in enumerate(actual):
            assert_same_shape(example[0], item, f"{path}[{n}]")
    elif isinstance(example, str):
        assert _format(actual) == _format(example), f"{path}: {actual!r} is not formatted like {example!r}"


def extract_contract_examples(text: str) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """(section, body) of every ```json block and inline `{...}` that parses, and the inline `"..."` strings."""
    bodies: list[tuple[str, Any]] = []
    strings: list[tuple[str, str]] = []
    parts = re.split(r"(?m)^## (.*)$", text)
    for section, chunk in zip(parts[1::2], parts[2::2], strict=True):
        for match in re.finditer(r"```json\n(.*?)```", chunk, re.S):
            bodies.append((section.strip(), json.loads(match.group(1))))
        prose = re.sub(r"```.*?```", "", chunk, flags=re.S)
        for match in re.finditer(r"`(\{[^`]*\}|\"[^`\"]*\")`", prose):
            try:
                value = json.loads(" ".join(match.group(1).split()))
            except ValueError:
                continue  # a schema sketch such as {"error": {"code": <int>, ...}}
            if isinstance(value, dict):
                bodies.append((section.strip(), value))
            else:
                strings.append((section.strip(), value))
    return bodies, strings


def test_embedded_examples_are_the_contract_s():
    if not CONTRACT_FILE.exists():
        pytest.skip(f"{CONTRACT_FILE} is absent (CI keeps it beside the checkout at ../shared); the copy is used")
    bodies, strings = extract_contract_examples(CONTRACT_FILE.read_text())
    data = json.loads(EXAMPLES_FILE.read_text())
    assert [(e["section"], e["body"]) for e in data["examples"]] == bodies, (
        "CONTRACT.md's examples changed: update openrouter_contract_examples.json and the tests that use them"
    )
    assert [(s["section"], s["text"]) for s in data["strings"]] == strings


async def test_key_body_has_the_contract_shape_on_both_paths(client, admin):
    _, _, key = await world(admin)
    await admin.events(event(key, WEDNESDAY - timedelta(hours=1), "1.25"))
    for path in ("/api/v1/key", "/api/v1/auth/key"):
        response = await client.get(path, headers=bearer(key))
        assert response.status_code == 200
        assert_same_shape(examples()["key_info"], loads(response))
        # Unknown fields a tolerant client must ignore.
        assert {"free_model_daily_requests", "workspace_id"} <= set(loads(response)["data"])


async def test_credits_and_activity_bodies_have_the_contract_shape(client, admin):
    _, manager, key = await world(admin)
    await admin.events(event(key, WEDNESDAY - timedelta(days=1), "0.015", byok_cost="0.012", reasoning_tokens=25))
    credits = await client.get("/api/v1/credits", headers=bearer(manager))
    assert_same_shape(examples()["credits"], loads(credits))
    activity = await client.get("/api/v1/activity", headers=bearer(manager))
    assert_same_shape(examples()["activity"], loads(activity))
    assert examples()["activity_date_format"] == "YYYY-MM-DD 00:00:00"
    assert loads(activity)["data"][0]["date"] == "2026-04-14 00:00:00"


async def test_key_objects_have_the_contract_shape(client, admin):
    _, manager, _ = await world(admin)
    created = await client.post("/api/v1/keys", json={"name": "Customer Key", "limit": 10}, headers=bearer(manager))
    assert created.status_code == 201
    body = loads(created)
    assert body["key"].startswith("sk-or-v1-")
    assert len(body["key"]) == 9 + 64
    assert_same_shape(examples()["key_object"], body["data"])
    one = await client.get(f"/api/v1/keys/{body['data']['hash']}", headers=bearer(manager))
    assert_same_shape(examples()["key_object"], loads(one)["data"])
    listed = await client.get("/api/v1/keys", headers=bearer(manager))
    assert_same_shape(examples()["key_object"], loads(listed)["data"][0])  # the newest: the one just made
    assert _format(loads(one)["data"]["created_at"]) == _format(examples()["timestamp_format"])


async def test_error_bodies_are_the_contract_s_exactly(client, admin):
    _, manager, key = await world(admin)
    ex = examples()

    unknown = await client.get("/api/v1/key", headers=bearer("sk-or-v1-" + "0" * 64))
    assert unknown.status_code == 401
    assert unknown.json() == ex["error_401_user_not_found"]
    assert list(unknown.json()["error"]) == ["message", "code"], "live puts message before code"

    missing = await client.get("/api/v1/key")
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": 401, "message": ex["message_no_auth"]}

    refused = await client.get("/api/v1/credits", headers=bearer(key))
    assert refused.status_code == 403
    assert refused.json() == ex["error_403_management"]
    for method, path in (("GET", "/keys"), ("POST", "/keys"), ("GET", f"/keys/{key['hash']}")):
        response = await client.request(method, f"/api/v1{path}", headers=bearer(key), json={"name": "x"})
        assert response.json() == ex["error_403_management"], path
    activity = await client.get("/api/v1/activity", headers=bearer(key))
    assert activity.status_code == 403
    assert activity.json()["error"]["message"] == ex["message_activity_403"]

    not_found = await client.get(f"/api/v1/keys/{'f' * 64}", headers=bearer(manager))
    assert not_found.status_code == 404
    assert not_found.json() == ex["error_404"]

    deleted = await client.delete(f"/api/v1/keys/{key['hash']}", headers=bearer(manager))
    assert deleted.status_code == 200
    assert deleted.json() == ex["deleted"]

    await admin.faults(status=429, count=1)
    limited = await client.get("/api/v1/key", headers=bearer(manager))
    assert limited.status_code == 429
    assert limited.json() == ex["error_429"]
    await admin.faults(status=402, count=1)
    payment = await client.get("/api/v1/key", headers=bearer(manager))
    assert payment.status_code == 402
    assert payment.json() == ex["error_402"]


# ---------------------------------------------------------------- windows and limits


def test_window_maths_is_utc_with_weeks_from_monday():
    sunday_night = datetime(2026, 4, 19, 23, 59, 59, tzinfo=UTC)
    assert day_start(sunday_night) == datetime(2026, 4, 19, tzinfo=UTC)
    assert week_start(sunday_night) == datetime(2026, 4, 13, tzinfo=UTC)
    assert week_start(datetime(2026, 4, 13, tzinfo=UTC)) == datetime(2026, 4, 13, tzinfo=UTC)
    assert month_start(sunday_night) == datetime(2026, 4, 1, tzinfo=UTC)
    assert limit_window_start(sunday_night, None) is None
    assert limit_window_start(sunday_night, "weekly") == datetime(2026, 4, 13, tzinfo=UTC)
    days = activity_days(WEDNESDAY)
    assert len(days) == 30
    assert days[0] == date(2026, 4, 14)
    assert days[-1] == date(2026, 3, 16)


def test_money_text_is_exact_and_never_exponent():
    assert money_text(Decimal("1E+2")) == "100"
    assert money_text(Decimal("0.0000000001")) == "0.0000000001"
    assert money_text(Decimal("-0.00")) == "0"
    assert money_text(Decimal("137.1410323910")) == "137.141032391"


def test_keys_hash_and_label_and_out_of_order_events():
    plaintext = "sk-or-v1-0e6" + "a" * 58 + "c96"
    assert key_label(plaintext) == "sk-or-v1-0e6...c96"
    state = EmulatorState()
    account = state.create_account(total_credits=Decimal(1))
    key, secret = state.create_key(account.id, plaintext=plaintext)
    assert key.hash == sha256(secret.encode()).hexdigest()
    index = EventIndex()
    for at_us, cost in ((30, "3"), (10, "1"), (20, "2")):
        index.add(Event(at_us, key.hash, "m", "m", "p", "e", 1, 0, 0, 0, Decimal(cost), Decimal(0)))
    assert index.spend(15, 30).cost == Decimal(5)
    assert [e.at_us for e in index.between(0, 25)] == [10, 20]


async def test_usage_windows_follow_utc_day_week_and_month(client, admin):
    _, _, key = await world(admin)
    amounts = {
        datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC): "1",  # last month, last week
        datetime(2026, 4, 1, tzinfo=UTC): "2",  # this month
        datetime(2026, 4, 12, 23, 59, 59, tzinfo=UTC): "4",  # Sunday: last week
        datetime(2026, 4, 13, tzinfo=UTC): "8",  # Monday 00:00: this week
        datetime(2026, 4, 14, 23, 59, 59, 999999, tzinfo=UTC): "16",  # yesterday
        datetime(2026, 4, 15, tzinfo=UTC): "32",  # today
        datetime(2026, 4, 15, 11, 59, tzinfo=UTC): "64",
    }
    await admin.events(*(event(key, at, cost, byok_cost="0.5") for at, cost in amounts.items()))
    data = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
    assert (data["usage"], data["usage_monthly"], data["usage_weekly"], data["usage_daily"]) == (127, 126, 120, 96)
    assert (data["byok_usage"], data["byok_usage_monthly"], data["byok_usage_weekly"], data["byok_usage_daily"]) == (
        Decimal("3.5"),
        3,
        2,
        1,
    )
    assert data["limit_remaining"] == 100 - 126


async def test_limit_remaining_follows_limit_reset_and_byok_setting(client, admin):
    account, _, _ = await world(admin)
    cases: list[tuple[dict[str, Any], Decimal | None]] = [
        ({"limit": 100, "limit_reset": "daily"}, Decimal(4)),
        ({"limit": 100, "limit_reset": "daily", "include_byok_in_limit": True}, Decimal("3.5")),
        ({"limit": 200, "limit_reset": "weekly"}, Decimal(80)),
        ({"limit": 200, "limit_reset": "monthly"}, Decimal(74)),
        ({"limit": 200}, Decimal(73)),
        ({"limit": "200.25", "include_byok_in_limit": True}, Decimal("72.25")),
        ({}, None),
    ]
    spends = {  # lifetime 127, month 126, week 120, day 96; BYOK 0.5 today, 0.5 earlier this week
        datetime(2026, 3, 31, 12, tzinfo=UTC): ("1", "0"),
        datetime(2026, 4, 2, tzinfo=UTC): ("6", "0"),
        datetime(2026, 4, 13, tzinfo=UTC): ("24", "0.5"),
        datetime(2026, 4, 15, 1, tzinfo=UTC): ("96", "0.5"),
    }
    for settings, expected in cases:
        key = await admin.key(account, **settings)
        await admin.events(*(event(key, at, c, byok_cost=b) for at, (c, b) in spends.items()))
        data = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
        assert data["limit_remaining"] == expected, settings
        assert data["limit"] == (Decimal(str(settings["limit"])) if "limit" in settings else None)


async def test_clock_advance_past_midnight_and_into_a_new_week_and_month(client, admin):
    account = await admin.account()
    await admin.clock(datetime(2026, 4, 19, 23, 59, 58, tzinfo=UTC))  # Sunday night
    key = await admin.key(account, limit=2, limit_reset="daily")
    await admin.events(event(key, datetime(2026, 4, 19, 10, tzinfo=UTC), "1.5"))
    data = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
    assert (data["usage_daily"], data["usage_weekly"], data["usage_monthly"]) == (Decimal("1.5"),) * 3
    assert data["limit_remaining"] == Decimal("0.5")

    await admin.call("POST", "/clock", {"advance_seconds": 4})  # Monday 00:00:02
    response = await client.get("/api/v1/key", headers=bearer(key))
    data = loads(response)["data"]
    assert (data["usage_daily"], data["usage_weekly"], data["usage_monthly"], data["usage"]) == (
        0,
        0,
        Decimal("1.5"),
        Decimal("1.5"),
    )
    assert data["limit_remaining"] == 2
    assert parsedate_to_datetime(response.headers["Date"]).date() == date(2026, 4, 20)

    await admin.clock(datetime(2026, 5, 1, 0, 0, 5, tzinfo=UTC))
    data = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
    assert (data["usage_monthly"], data["usage"]) == (0, Decimal("1.5"))


async def test_only_events_up_to_now_count_and_future_events_are_refused(client, admin):
    _, manager, key = await world(admin)
    await admin.events(event(key, WEDNESDAY - timedelta(minutes=10), "5"))
    refused = await client.post("/_admin/events", json={"events": [event(key, WEDNESDAY + timedelta(hours=1), "1")]})
    assert refused.status_code == 400
    await admin.clock(WEDNESDAY - timedelta(hours=1))  # back before the event
    data = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
    assert data["usage"] == 0
    credits = loads(await client.get("/api/v1/credits", headers=bearer(manager)))["data"]
    assert credits == {"total_credits": Decimal("100.5"), "total_usage": 0}


# ---------------------------------------------------------------- /activity


async def test_activity_covers_the_last_30_completed_days_only(client, admin):
    account, manager, key = await world(admin)
    other = await admin.key(account)
    yesterday = datetime(2026, 4, 14, 10, tzinfo=UTC)
    await admin.events(
        event(key, datetime(2026, 4, 15, 1, tzinfo=UTC), "9"),  # today: never in /activity
        event(key, yesterday, "0.1", provider_name="OpenAI", requests=2, prompt_tokens=10),
        event(key, yesterday + timedelta(hours=1), "0.2", provider_name="OpenAI", requests=3, prompt_tokens=5),
        event(key, yesterday, "0.4", provider_name="Azure"),  # same model, another endpoint: its own row
        event(other, datetime(2026, 3, 16, 23, tzinfo=UTC), "1"),  # 30 days back: in
        event(other, datetime(2026, 3, 15, 23, tzinfo=UTC), "2"),  # 31 days back: out
    )
    rows = loads(await client.get("/api/v1/activity", headers=bearer(manager)))["data"]
    assert [(r["date"], r["provider_name"], r["usage"], r["requests"]) for r in rows] == [
        ("2026-04-14 00:00:00", "Azure", Decimal("0.4"), 1),
        ("2026-04-14 00:00:00", "OpenAI", Decimal("0.3"), 5),
        ("2026-03-16 00:00:00", "OpenAI", 1, 1),
    ]
    assert rows[0]["endpoint_id"] != rows[1]["endpoint_id"]
    assert rows[1]["prompt_tokens"] == 15

    one_day = loads(await client.get("/api/v1/activity?date=2026-03-16", headers=bearer(manager)))["data"]
    assert [r["usage"] for r in one_day] == [1]
    by_key = await client.get(f"/api/v1/activity?api_key_hash={other['hash']}", headers=bearer(manager))
    assert [r["usage"] for r in loads(by_key)["data"]] == [1]

    for bad in ("2026-04-15", "2026-03-15", "2026-04-16", "yesterday"):
        response = await client.get(f"/api/v1/activity?date={bad}", headers=bearer(manager))
        assert response.status_code == 400, bad
        assert response.json()["error"] == {"code": 400, "message": examples()["message_activity_bad_date"]}

    # Past midnight, today's spend becomes yesterday's and appears.
    await admin.clock(datetime(2026, 4, 16, 0, 0, 1, tzinfo=UTC))
    rows = loads(await client.get("/api/v1/activity?date=2026-04-15", headers=bearer(manager)))["data"]
    assert [r["usage"] for r in rows] == [9]


# ---------------------------------------------------------------- /keys


async def test_keys_page_by_100_most_recent_first(client, admin):
    account, manager, _ = await world(admin)
    await admin.call("POST", f"/accounts/{account}/keys", {"kind": "inference", "name": "bulk", "count": 250}, 201)
    pages = []
    for offset in (0, 100, 200, 300):
        response = await client.get(f"/api/v1/keys?offset={offset}", headers=bearer(manager))
        pages.append(loads(response)["data"])
    assert [len(p) for p in pages] == [100, 100, 51, 0]  # 250 + the world's key; management keys are not listed
    names = [k["name"] for page in pages for k in page]
    assert names[:3] == ["bulk 250", "bulk 249", "bulk 248"]
    assert len({k["hash"] for page in pages for k in page}) == 251
    bad = await client.get("/api/v1/keys?offset=-1", headers=bearer(manager))
    assert bad.status_code == 400


async def test_keys_create_patch_disable_and_delete_through_the_api(client, admin):
    _, manager, _ = await world(admin)
    created = loads(
        await client.post(
            "/api/v1/keys",
            json={"name": "ci", "limit": 2.5, "limit_reset": "weekly", "include_byok_in_limit": True},
            headers=bearer(manager),
        )
    )
    plaintext, digest = created["key"], created["data"]["hash"]
    assert digest == sha256(plaintext.encode()).hexdigest()
    assert created["data"]["label"] == key_label(plaintext)
    assert created["data"]["creator_user_id"] is None
    assert (await client.get("/api/v1/key", headers=bearer(plaintext))).status_code == 200

    await admin.call("POST", "/clock", {"advance_seconds": 60})
    patched = await client.patch(
        f"/api/v1/keys/{digest}", json={"disabled": True, "limit": None}, headers=bearer(manager)
    )
    data = loads(patched)["data"]
    assert (data["disabled"], data["limit"], data["limit_remaining"]) == (True, None, None)
    assert data["updated_at"] > data["created_at"]
    assert (await client.get("/api/v1/key", headers=bearer(plaintext))).status_code == 401
    hidden = loads(await client.get("/api/v1/keys", headers=bearer(manager)))["data"]
    shown = loads(await client.get("/api/v1/keys?include_disabled=true", headers=bearer(manager)))["data"]
    assert digest not in {k["hash"] for k in hidden}
    assert digest in {k["hash"] for k in shown}

    bad = await client.patch(f"/api/v1/keys/{digest}", json={"limit_reset": "yearly"}, headers=bearer(manager))
    assert bad.status_code == 400
    assert (await client.post("/api/v1/keys", json={}, headers=bearer(manager))).status_code == 400

    assert (await client.delete(f"/api/v1/keys/{digest}", headers=bearer(manager))).status_code == 200
    assert (await client.get(f"/api/v1/keys/{digest}", headers=bearer(manager))).status_code == 404
    assert (await client.get("/api/v1/key", headers=bearer(plaintext))).status_code == 401


async def test_patch_keys_is_the_management_api_s_kill_switch_and_limit(client, admin):
    """Issue 17: `PATCH /keys/{hash}` needs a management key of the key's own account; `disabled` makes the key
    fail `/key` with the live 401 and shows in the list with `include_disabled`; a limit applies at once; 404 for
    a hash the account does not have; 429 under injected faults; the admin view shows what it left."""
    _, manager, key = await world(admin)
    await admin.events(event(key, WEDNESDAY - timedelta(hours=1), "3.5"))
    path = f"/api/v1/keys/{key['hash']}"
    assert loads(await client.patch(path, json={"disabled": True}))["error"]["message"] == examples()["message_no_auth"]
    refused = await client.patch(path, json={"disabled": True}, headers=bearer(key))
    assert (refused.status_code, loads(refused)["error"]["code"]) == (403, 403)
    other_account = await admin.account()
    stranger = await admin.key(other_account, "management")
    assert (await client.patch(path, json={"disabled": True}, headers=bearer(stranger))).status_code == 404
    unknown = await client.patch("/api/v1/keys/" + "0" * 64, json={"disabled": True}, headers=bearer(manager))
    assert loads(unknown) == {"error": {"code": 404, "message": "Resource not found"}}
    for bad in ({"disabled": "yes"}, {"limit": -1}, {"limit": "x"}, {"include_byok_in_limit": 1}, {"name": ""}):
        assert (await client.patch(path, json=bad, headers=bearer(manager))).status_code == 400

    disabled = loads(await client.patch(path, json={"disabled": True}, headers=bearer(manager)))["data"]
    assert (disabled["hash"], disabled["disabled"]) == (key["hash"], True)
    again = loads(await client.patch(path, json={"disabled": True}, headers=bearer(manager)))["data"]
    assert again["disabled"] is True  # the same change twice is harmless
    assert (await client.get("/api/v1/key", headers=bearer(key))).json() == examples()["error_401_user_not_found"]
    listed = loads(await client.get("/api/v1/keys?include_disabled=true", headers=bearer(manager)))["data"]
    assert [k["disabled"] for k in listed if k["hash"] == key["hash"]] == [True]
    state = await admin.call("GET", f"/keys/{key['hash']}")
    assert (state["kind"], state["disabled"]) == ("inference", True)

    limited = await client.patch(
        path, json={"disabled": False, "limit": 5, "limit_reset": "daily"}, headers=bearer(manager)
    )
    data = loads(limited)["data"]
    assert (data["disabled"], data["limit"], data["limit_reset"]) == (False, 5, "daily")
    assert data["limit_remaining"] == Decimal("1.5")  # 5 minus today's 3.5
    info = loads(await client.get("/api/v1/key", headers=bearer(key)))["data"]
    assert (info["limit"], info["limit_reset"], info["limit_remaining"]) == (5, "daily", Decimal("1.5"))

    byok = loads(await client.patch(path, json={"include_byok_in_limit": True}, headers=bearer(manager)))["data"]
    assert (byok["include_byok_in_limit"], byok["limit"], byok["limit_reset"]) == (True, 5, "daily")
    assert (await admin.call("GET", f"/keys/{key['hash']}"))["include_byok_in_limit"] is True
    kept = loads(await client.patch(path, json={"limit": 6}, headers=bearer(manager)))["data"]
    assert kept["include_byok_in_limit"] is True  # absent from the body: left as it was

    await admin.faults(status=429, count=1, retry_after=3, paths=["/keys"])
    limited = await client.patch(path, json={"disabled": True}, headers=bearer(manager))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert (await admin.call("GET", f"/keys/{key['hash']}"))["disabled"] is False  # the refused change left nothing
    assert (await client.patch(path, json={"disabled": True}, headers=bearer(manager))).status_code == 200
    await admin.call("GET", "/keys/" + "0" * 64, expect=404)


async def test_revoke_disable_enable_and_expiry_through_admin(client, admin):
    account, manager, key = await world(admin)
    assert (await client.get("/api/v1/key", headers=bearer(key))).status_code == 200
    await admin.call("POST", f"/keys/{key['hash']}/disable", expect=204)
    assert (await client.get("/api/v1/key", headers=bearer(key))).json() == examples()["error_401_user_not_found"]
    await admin.call("POST", f"/keys/{key['hash']}/enable", expect=204)
    assert (await client.get("/api/v1/key", headers=bearer(key))).status_code == 200

    expiring = await admin.key(account, expires_at=(WEDNESDAY + timedelta(hours=1)).isoformat())
    assert loads(await client.get("/api/v1/key", headers=bearer(expiring)))["data"]["expires_at"].endswith("+00:00")
    await admin.call("POST", "/clock", {"advance_seconds": 3601})
    assert (await client.get("/api/v1/key", headers=bearer(expiring))).status_code == 401

    await admin.call("POST", f"/keys/{key['hash']}/revoke", expect=204)
    assert (await client.get("/api/v1/key", headers=bearer(key))).status_code == 401
    assert key["hash"] not in {
        k["hash"]
        for k in loads(await client.get("/api/v1/keys?include_disabled=true", headers=bearer(manager)))["data"]
    }
    await admin.call("POST", f"/keys/{key['hash']}/revoke", expect=404)
    malformed = await client.get("/api/v1/key", headers={"Authorization": "Basic abc"})
    assert malformed.json()["error"]["message"] == examples()["message_no_auth"]


# ---------------------------------------------------------------- money, clock, truth, stats


async def test_money_is_exact_decimal_text_on_the_wire(client, admin):
    account, manager, key = await world(admin)
    costs = ["0.1015644762", "137.141032391", "0.0000000001", "0.0000000002"]
    await admin.events(*(event(key, WEDNESDAY - timedelta(minutes=n + 1), c) for n, c in enumerate(costs)))
    total = sum(map(Decimal, costs), Decimal(0))
    response = await client.get("/api/v1/key", headers=bearer(key))
    assert f'"usage": {total}' in response.text
    assert "E" not in response.text.split('"rate_limit"')[0]
    assert loads(response)["data"]["limit_remaining"] == 100 - total
    credits = await client.get("/api/v1/credits", headers=bearer(manager))
    assert credits.text == f'{{"data": {{"total_credits": 100.5, "total_usage": {total}}}}}'
    truth = await admin.call("GET", f"/truth?account={account}")
    assert truth["balance"] == str(Decimal("100.5") - total)
    assert truth["keys"][key["hash"]]["usage"] == str(total)
    assert truth["keys"][key["hash"]]["daily"] == {"2026-04-15": {"cost": str(total), "byok_cost": "0"}}
    day = truth["activity"][key["hash"]]["2026-04-15"]["openai/gpt-4.1"]
    assert (day["cost"], day["requests"]) == (str(total), 4)


async def test_date_header_follows_the_virtual_clock_everywhere(client, admin):
    await admin.clock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    for response in (
        await client.get("/api/v1/key"),  # an error
        await client.get("/_admin/clock"),
        await client.get("/api/v1/nowhere"),
    ):
        sent = parsedate_to_datetime(response.headers["Date"])
        assert abs(sent - datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)) < timedelta(seconds=3), response.headers["Date"]
        assert response.headers["Date"].endswith(" GMT")


async def test_stats_count_api_requests_by_route_and_status(client, admin):
    _, manager, key = await world(admin)
    await client.get("/api/v1/key", headers=bearer(key))
    await client.get("/api/v1/key")
    await client.get(f"/api/v1/keys/{key['hash']}", headers=bearer(manager))
    stats = await admin.call("GET", "/stats")
    assert stats == {"requests": {"/key": 2, "/keys/{hash}": 1}, "by_status": {"200": 2, "401": 1}}
    await admin.call("POST", "/reset", expect=204)
    assert await admin.call("GET", "/stats") == {"requests": {}, "by_status": {}}


# ---------------------------------------------------------------- faults


async def test_429_carries_rate_limit_headers_and_heals_after_count(client, admin):
    _, manager, key = await world(admin)
    await admin.faults(status=429, count=2, retry_after=3, paths=["/key"])
    assert (await client.get("/api/v1/credits", headers=bearer(manager))).status_code == 200  # another path
    for _ in range(2):
        response = await client.get("/api/v1/key", headers=bearer(key))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert int(response.headers["X-RateLimit-Limit"]) > 0
        reset_ms = int(response.headers["X-RateLimit-Reset"])
        assert abs(reset_ms - (WEDNESDAY + timedelta(seconds=3)).timestamp() * 1000) < 5_000
    healthy = await client.get("/api/v1/key", headers=bearer(key))
    assert healthy.status_code == 200
    assert "X-RateLimit-Limit" not in healthy.headers


async def test_402_and_5xx_faults_look_like_the_live_ones(client, admin):
    _, manager, key = await world(admin)
    await admin.faults(status=402, limit_source="openrouter_key_limit", count=1)
    payment = await client.get("/api/v1/key", headers=bearer(key))
    assert payment.json()["error"]["metadata"] == {"limit_source": "openrouter_key_limit"}
    await admin.faults(status=520, count=1)
    cloudflare = await client.get("/api/v1/activity", headers=bearer(manager))
    assert cloudflare.status_code == 520
    assert cloudflare.headers["Content-Type"].startswith("text/html")
    assert "<html" in cloudflare.text
    await admin.faults(status=503, retry_after=7)  # no count: until cleared
    for _ in range(3):
        unavailable = await client.get("/api/v1/keys", headers=bearer(manager))
        assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "7")
        assert unavailable.json()["error"]["code"] == 503
    await admin.call("DELETE", "/faults")
    assert (await client.get("/api/v1/keys", headers=bearer(manager))).status_code == 200
    assert (await client.put("/_admin/faults", json={"status": 418})).status_code == 400


async def test_a_hang_lasts_until_the_client_gives_up(client, admin):
    _, _, key = await world(admin)
    await admin.faults(hang=True, count=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await client.get("/api/v1/key", headers=bearer(key), timeout=0.3)
    assert time.monotonic() - started < 2
    assert (await client.get("/api/v1/key", headers=bearer(key))).status_code == 200
    # The hung handler noticed the client leave and ended (counted as 499, not as a 5xx).
    for _ in range(40):
        if (await admin.call("GET", "/stats"))["by_status"].get("499"):
            break
        await asyncio.sleep(0.05)
    assert (await admin.call("GET", "/stats"))["by_status"] == {"200": 1, "499": 1}


async def test_latency_delays_every_api_request_but_not_admin(client, admin):
    _, _, key = await world(admin)
    await admin.faults(latency_ms=120)
    started = time.monotonic()
    assert (await client.get("/api/v1/key", headers=bearer(key))).status_code == 200
    assert time.monotonic() - started >= 0.12
    started = time.monotonic()
    await admin.call("GET", "/clock")
    assert time.monotonic() - started < 0.1


# ---------------------------------------------------------------- seed and process


async def test_demo_seed_fills_30_days_of_activity():
    async with running_emulator(seed="demo") as emu, httpx.AsyncClient(base_url=emu.base_url) as http:
        assert emu.seed is not None
        manager = bearer(DEMO_KEYS["management"])
        rows = loads(await http.get("/activity", headers=manager))["data"]
        assert len({r["date"] for r in rows}) == 30
        assert len({r["model"] for r in rows}) >= 4
        assert len({r["provider_name"] for r in rows}) >= 6
        assert any(r["byok_usage_inference"] > 0 for r in rows)
        keys = loads(await http.get("/keys", headers=manager))["data"]
        assert sorted(k["name"] for k in keys) == ["Production", "Research", "Staging"]
        for name in ("production", "staging", "research"):
            assert loads(await http.get("/key", headers=bearer(DEMO_KEYS[name])))["data"]["usage"] > 0
        credits = loads(await http.get("/credits", headers=manager))["data"]
        assert 0 < credits["total_usage"] < credits["total_credits"]


def test_cli_prints_one_line_serves_and_is_ready_for_devstack():
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.emulator", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        response = httpx.get(f"{match.group(1)}/_admin/clock", timeout=5)
        assert response.status_code == 200
        assert "now" in response.json()
        assert httpx.get(f"{match.group(1)}/health/ready", timeout=5).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


async def test_many_keys_answer_fast():
    """The benchmark drives 2,000 keys; /key must not scan the world."""
    async with running_emulator() as emu, httpx.AsyncClient(base_url=emu.url) as http:
        account = await Admin(http).account()
        created = await http.post(f"/_admin/accounts/{account}/keys", json={"kind": "inference", "count": 2000})
        items = created.json()["items"]
        events = [{"key_hash": k["hash"], "model": "m/x", "cost": "0.001"} for k in items for _ in range(5)]
        assert (await http.post("/_admin/events", json={"events": events})).status_code == 201

        async def usage(session: aiohttp.ClientSession, key: dict[str, Any]) -> Decimal:
            async with session.get(f"{emu.base_url}/key", headers=bearer(key)) as response:
                return Decimal(str(json.loads(await response.text(), parse_float=Decimal)["data"]["usage"]))

        started = time.monotonic()
        async with aiohttp.ClientSession() as session:  # httpx's pool is the bottleneck at this fan-out
            spent = await asyncio.gather(*(usage(session, k) for k in items[:500]))
        assert set(spent) == {Decimal("0.005")}
        assert time.monotonic() - started < 3
