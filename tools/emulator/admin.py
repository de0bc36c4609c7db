"""The admin surface under `/_admin` for tests, the demo and benchmarks (docs/architecture.md, issue 4).

Money in request bodies may be JSON numbers or decimal strings; both are read exactly.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from tools.emulator.api import render_key_object
from tools.emulator.faults import Faults
from tools.emulator.runtime import ApiError, emulator, json_response, read_json
from tools.emulator.state import LIMIT_RESETS, ZERO, Account, iso, parse_time
from tools.emulator.wire import as_money

ADMIN_PREFIX = "/_admin"
MAX_KEYS_PER_CALL = 20_000
MAX_EVENTS_PER_CALL = 100_000


def add_routes(app: web.Application) -> None:
    """Register the admin endpoints."""
    p = ADMIN_PREFIX
    app.router.add_post(f"{p}/reset", reset)
    app.router.add_get(f"{p}/clock", get_clock)
    app.router.add_post(f"{p}/clock", set_clock)
    app.router.add_post(f"{p}/accounts", create_account)
    app.router.add_post(f"{p}/accounts/{{account}}/keys", create_keys)
    app.router.add_post(f"{p}/accounts/{{account}}/credits", set_credits)
    app.router.add_post(f"{p}/events", add_events)
    app.router.add_get(f"{p}/keys/{{hash}}", get_key_state)
    app.router.add_post(f"{p}/keys/{{hash}}/revoke", revoke_key)
    app.router.add_post(f"{p}/keys/{{hash}}/disable", disable_key)
    app.router.add_post(f"{p}/keys/{{hash}}/enable", enable_key)
    app.router.add_put(f"{p}/faults", put_faults)
    app.router.add_delete(f"{p}/faults", delete_faults)
    app.router.add_get(f"{p}/truth", get_truth)
    app.router.add_get(f"{p}/stats", get_stats)


async def reset(request: web.Request) -> web.Response:
    """Forget everything; real time; no faults; zero stats."""
    emulator(request).reset()
    return web.Response(status=204)


async def get_clock(request: web.Request) -> web.Response:
    return json_response({"now": iso(emulator(request).state.clock.now())})


async def set_clock(request: web.Request) -> web.Response:
    """`{now: iso}` sets the clock, `{advance_seconds: n}` moves it; time keeps flowing from there."""
    body = await _object(request)
    clock = emulator(request).state.clock
    if "now" in body:
        clock.set(_time(body["now"], "now"))
    elif "advance_seconds" in body:
        seconds = body["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | Decimal):
            raise ApiError(400, "advance_seconds must be a number")
        clock.advance(float(seconds))
    else:
        raise ApiError(400, "give now or advance_seconds")
    return json_response({"now": iso(clock.now())})


async def create_account(request: web.Request) -> web.Response:
    body = await _object(request)
    name = body.get("name", "Account")
    if not isinstance(name, str):
        raise ApiError(400, "name must be a string")
    credits = _money(body.get("total_credits", 0), "total_credits")
    account = emulator(request).state.create_account(name, credits)
    return json_response(_account_json(request, account.id), status=201)


async def set_credits(request: web.Request) -> web.Response:
    account, body = await _account_and_body(request)
    if "total_credits" not in body:
        raise ApiError(400, "total_credits is required")
    account.total_credits = _money(body["total_credits"], "total_credits")
    return json_response(_account_json(request, account.id))


async def create_keys(request: web.Request) -> web.Response:
    """Create `count` keys (default 1) of one kind; answers the plaintexts, which exist only in this reply."""
    account, body = await _account_and_body(request)
    kind = body.get("kind", "inference")
    if kind not in ("inference", "management"):
        raise ApiError(400, "kind must be inference or management")
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_KEYS_PER_CALL:
        raise ApiError(400, f"count must be an integer from 1 to {MAX_KEYS_PER_CALL}")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "name must be a string")
    limit = None if body.get("limit") is None else _money(body["limit"], "limit")
    if limit is not None and limit < 0:
        raise ApiError(400, "limit must not be negative")
    limit_reset = body.get("limit_reset")
    if limit_reset is not None and limit_reset not in LIMIT_RESETS:
        raise ApiError(400, "limit_reset must be daily, weekly, monthly or null")
    include_byok = body.get("include_byok_in_limit", False)
    if not isinstance(include_byok, bool):
        raise ApiError(400, "include_byok_in_limit must be a boolean")
    expires_at = None if body.get("expires_at") is None else _time(body["expires_at"], "expires_at")
    state = emulator(request).state
    items = []
    for n in range(count):
        key_name = name if name is not None else f"{kind.title()} key"
        if count > 1:
            key_name = f"{key_name} {n + 1}"
        key, plaintext = state.create_key(
            account.id,
            kind,
            name=key_name,
            limit=limit,
            limit_reset=limit_reset,
            include_byok_in_limit=include_byok,
            expires_at=expires_at,
            creator_user_id=account.user_id,  # as if made in the web UI
        )
        items.append({"hash": key.hash, "key": plaintext, "label": key.label, "kind": kind, "name": key.name})
    return json_response({"items": items}, status=201)


async def add_events(request: web.Request) -> web.Response:
    """Record usage; all events are checked before any is added, so a 400 adds nothing."""
    state = emulator(request).state
    body = await _object(request)
    events = body.get("events")
    if not isinstance(events, list) or len(events) > MAX_EVENTS_PER_CALL:
        raise ApiError(400, f"events must be a list of at most {MAX_EVENTS_PER_CALL}")
    now = state.clock.now()
    parsed = [_event(state.key_accounts, item, n, now) for n, item in enumerate(events)]
    for digest, fields in parsed:
        state.add_event(digest, **fields)
    return json_response({"added": len(parsed)}, status=201)


def _event(known: dict[str, str], item: Any, n: int, now: datetime) -> tuple[str, dict[str, Any]]:
    where = f"events[{n}]"
    if not isinstance(item, dict):
        raise ApiError(400, f"{where} must be an object")
    digest = item.get("key_hash")
    if digest not in known:
        raise ApiError(400, f"{where}.key_hash is not a key of any account")
    model = item.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, f"{where}.model is required")
    at = now if item.get("at") is None else _time(item["at"], f"{where}.at")
    if at > now:
        raise ApiError(400, f"{where}.at is in the future of the emulator's clock")
    fields: dict[str, Any] = {
        "at": at,
        "model": model,
        "cost": _money(item.get("cost"), f"{where}.cost"),
        "byok_cost": _money(item.get("byok_cost", 0), f"{where}.byok_cost"),
    }
    if fields["cost"] < ZERO or fields["byok_cost"] < ZERO:
        raise ApiError(400, f"{where}: costs must not be negative")
    for name in ("model_permaslug", "provider_name"):
        if item.get(name) is not None:
            if not isinstance(item[name], str):
                raise ApiError(400, f"{where}.{name} must be a string")
            fields["permaslug" if name == "model_permaslug" else name] = item[name]
    for name in ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens"):
        if name in item:
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ApiError(400, f"{where}.{name} must be a non-negative integer")
            fields[name] = value
    return str(digest), fields


async def revoke_key(request: web.Request) -> web.Response:
    """The key is deleted upstream: 401 from now on, gone from `/keys`."""
    if not emulator(request).state.revoke(request.match_info["hash"]):
        raise ApiError(404, "key not found")
    return web.Response(status=204)


async def get_key_state(request: web.Request) -> web.Response:
    """Any key as `/keys` shows it (management keys too), with its kind: what a `PATCH /keys/{hash}` left."""
    state = emulator(request).state
    key = state.keys.get(request.match_info["hash"])
    if key is None:
        raise ApiError(404, "key not found")
    return json_response({"kind": key.kind, **render_key_object(state, key)})


async def disable_key(request: web.Request) -> web.Response:
    return _set_disabled(request, True)


async def enable_key(request: web.Request) -> web.Response:
    return _set_disabled(request, False)


def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    state = emulator(request).state
    key = state.keys.get(request.match_info["hash"])
    if key is None:
        raise ApiError(404, "key not found")
    key.disabled = disabled
    key.updated_at = state.clock.now()
    return web.Response(status=204)


async def put_faults(request: web.Request) -> web.Response:
    """Replace the fault configuration (see faults.py)."""
    body = await read_json(request)
    try:
        faults = Faults.parse(body)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    emulator(request).faults = faults
    return json_response(faults.to_json())


async def delete_faults(request: web.Request) -> web.Response:
    emulator(request).faults = None
    return json_response({})


async def get_truth(request: web.Request) -> web.Response:
    """Ground truth of one account, money as decimal strings."""
    state = emulator(request).state
    account = request.query.get("account")
    if not account:
        raise ApiError(400, "account is required")
    if account not in state.accounts:
        raise ApiError(404, "account not found")
    return json_response(state.truth(account))


async def get_stats(request: web.Request) -> web.Response:
    stats = emulator(request).stats
    return json_response({"requests": dict(stats.requests), "by_status": dict(stats.by_status)})


# ---------------------------------------------------------------- helpers


async def _account_and_body(request: web.Request) -> tuple[Account, dict[str, Any]]:
    """The account named in the path (404 when unknown) and the request's JSON object."""
    account = emulator(request).state.accounts.get(request.match_info["account"])
    if account is None:
        raise ApiError(404, "account not found")
    return account, await _object(request)


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _money(value: Any, field: str) -> Decimal:
    try:
        return as_money(value, field)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be an ISO 8601 timestamp")
    try:
        return parse_time(value)
    except ValueError:
        raise ApiError(400, f"{field} must be an ISO 8601 timestamp") from None


def _account_json(request: web.Request, account_id: str) -> dict[str, Any]:
    account = emulator(request).state.accounts[account_id]
    return {
        "id": account.id,
        "name": account.name,
        "total_credits": account.total_credits,
        "workspace_id": account.workspace_id,
    }
