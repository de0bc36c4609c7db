"""OpenRouter's endpoints under `/api/v1`, computed from the emulator's state (see CONTRACT.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web

from tools.emulator.runtime import ApiError, emulator, json_response, read_json
from tools.emulator.state import (
    LIMIT_RESETS,
    Account,
    ActivityRow,
    EmulatorState,
    Key,
    KeyUsage,
    activity_date,
    activity_days,
    iso,
    parse_time,
)
from tools.emulator.wire import as_money

API_PREFIX = "/api/v1"
PAGE_SIZE = 100
NOT_MANAGEMENT = "Only management keys can perform this operation"
NOT_MANAGEMENT_ACTIVITY = "Only management keys can fetch activity for an account"
BAD_ACTIVITY_DATE = "Date must be within the last 30 (completed) UTC days"
RATE_LIMIT_NOTE = {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."}


def add_routes(app: web.Application) -> None:
    """Register every OpenRouter endpoint the emulator serves."""
    p = API_PREFIX
    app.router.add_get(f"{p}/key", get_key)
    app.router.add_get(f"{p}/auth/key", get_key)
    app.router.add_get(f"{p}/credits", get_credits)
    app.router.add_get(f"{p}/activity", get_activity)
    app.router.add_get(f"{p}/keys", list_keys)
    app.router.add_post(f"{p}/keys", create_key)
    app.router.add_get(f"{p}/keys/{{hash}}", get_key_by_hash)
    app.router.add_patch(f"{p}/keys/{{hash}}", patch_key)
    app.router.add_delete(f"{p}/keys/{{hash}}", delete_key)


# ---------------------------------------------------------------- auth


def _authenticate(request: web.Request) -> Key:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "No auth credentials found")
    key = emulator(request).state.authenticate(token)
    if key is None:
        raise ApiError(401, "User not found.", message_first=True)
    return key


def _management(request: web.Request, refusal: str = NOT_MANAGEMENT) -> tuple[Key, Account]:
    key = _authenticate(request)
    if key.kind != "management":
        raise ApiError(403, refusal)
    return key, emulator(request).state.accounts[key.account_id]


# ---------------------------------------------------------------- renderers


def usage_figures(usage: KeyUsage) -> dict[str, Any]:
    """Lifetime and window spend, with and without BYOK: the same eight fields, in this order, in `/key` and `/keys`."""
    return {
        f"{prefix}{window}": getattr(usage, f"{prefix}{window}")
        for prefix in ("usage", "byok_usage")
        for window in ("", "_daily", "_weekly", "_monthly")
    }


def render_key_info(state: EmulatorState, key: Key) -> dict[str, Any]:
    """`GET /key`'s `data`, in the live field order, plus fields a tolerant client must ignore."""
    usage = state.key_usage(key)
    account = state.accounts[key.account_id]
    return {
        "label": key.label,
        "limit": key.limit,
        "limit_reset": key.limit_reset,
        "limit_remaining": usage.limit_remaining,
        "include_byok_in_limit": key.include_byok_in_limit,
        **usage_figures(usage),
        # Live: "free tier" means the account never bought credits.
        "is_free_tier": account.total_credits <= 0,
        "is_management_key": key.kind == "management",
        "is_provisioning_key": key.kind == "management",
        "creator_user_id": key.creator_user_id,
        "expires_at": iso(key.expires_at) if key.expires_at else None,
        "rate_limit": dict(RATE_LIMIT_NOTE),
        # Unknown to the contract: here so clients prove they ignore what they do not know.
        "free_model_daily_requests": 1000,
        "workspace_id": account.workspace_id,
    }


def render_key_object(state: EmulatorState, key: Key) -> dict[str, Any]:
    """A `/keys` key object, in the live field order."""
    usage = state.key_usage(key)
    return {
        "hash": key.hash,
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        "limit": key.limit,
        "limit_remaining": usage.limit_remaining,
        "limit_reset": key.limit_reset,
        "include_byok_in_limit": key.include_byok_in_limit,
        **usage_figures(usage),
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
        "creator_user_id": key.creator_user_id,
        "expires_at": iso(key.expires_at) if key.expires_at else None,
        "workspace_id": state.accounts[key.account_id].workspace_id,
        "organization_id": None,  # unknown to the contract
    }


def render_activity_row(row: ActivityRow) -> dict[str, Any]:
    """An `/activity` row with the live date format."""
    return {
        "date": activity_date(row.day),
        "model": row.model,
        "model_permaslug": row.permaslug,
        "endpoint_id": row.endpoint_id,
        "provider_name": row.provider_name,
        "usage": row.usage,
        "byok_usage_inference": row.byok_usage,
        "requests": row.requests,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "byok_requests": row.byok_requests,  # unknown to the contract
    }


# ---------------------------------------------------------------- handlers


async def get_key(request: web.Request) -> web.Response:
    """`GET /key` (and the older `/auth/key`): any live key's own figures."""
    key = _authenticate(request)
    return json_response({"data": render_key_info(emulator(request).state, key)})


async def get_credits(request: web.Request) -> web.Response:
    """`GET /credits`: the account's credits bought and spent."""
    _, account = _management(request)
    state = emulator(request).state
    return json_response(
        {"data": {"total_credits": account.total_credits, "total_usage": state.total_usage(account.id)}}
    )


async def get_activity(request: web.Request) -> web.Response:
    """`GET /activity`: the last 30 completed UTC days (or one of them), optionally for one key hash."""
    _, account = _management(request, NOT_MANAGEMENT_ACTIVITY)
    state = emulator(request).state
    day: date | None = None
    if "date" in request.query:
        try:
            day = date.fromisoformat(request.query["date"])
        except ValueError:
            raise ApiError(400, BAD_ACTIVITY_DATE) from None
        if day not in activity_days(state.clock.now()):
            raise ApiError(400, BAD_ACTIVITY_DATE)
    workspace = request.query.get("workspace_id")
    if workspace is not None and workspace != account.workspace_id:
        return json_response({"data": []})
    rows = state.activity(account.id, day=day, key=request.query.get("api_key_hash"))
    return json_response({"data": [render_activity_row(r) for r in rows]})


async def list_keys(request: web.Request) -> web.Response:
    """`GET /keys`: 100 keys a page, most recent first; disabled keys only with `include_disabled=true`."""
    _, account = _management(request)
    state = emulator(request).state
    try:
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "offset must be a non-negative integer") from None
    if offset < 0:
        raise ApiError(400, "offset must be a non-negative integer")
    include_disabled = request.query.get("include_disabled", "false").lower() in {"true", "1"}
    workspace = request.query.get("workspace_id")
    if workspace is not None and workspace != account.workspace_id:
        return json_response({"data": []})
    keys = state.list_keys(account.id, include_disabled=include_disabled)[offset : offset + PAGE_SIZE]
    return json_response({"data": [render_key_object(state, k) for k in keys]})


def _own_key(request: web.Request) -> Key:
    _, account = _management(request)
    key = emulator(request).state.keys.get(request.match_info["hash"])
    if key is None or key.account_id != account.id or key.kind != "inference":
        raise ApiError(404, "Resource not found")
    return key


async def get_key_by_hash(request: web.Request) -> web.Response:
    """`GET /keys/{hash}`."""
    key = _own_key(request)
    return json_response({"data": render_key_object(emulator(request).state, key)})


async def create_key(request: web.Request) -> web.Response:
    """`POST /keys`: 201 with the plaintext, shown this once."""
    _, account = _management(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name is required")
    state = emulator(request).state
    fields = _limit_fields(body)
    expires_at = None
    if body.get("expires_at") is not None:
        try:
            expires_at = parse_time(str(body["expires_at"]))
        except ValueError:
            raise ApiError(400, "expires_at must be an ISO 8601 timestamp") from None
        if expires_at <= state.clock.now():
            raise ApiError(400, "expires_at must be in the future")
    key, plaintext = state.create_key(
        account.id,
        "inference",
        name=name,
        limit=fields.get("limit"),
        limit_reset=fields.get("limit_reset"),
        include_byok_in_limit=bool(fields.get("include_byok_in_limit", False)),
        expires_at=expires_at,
        creator_user_id=None,  # keys made through the API have no creating user
    )
    return json_response({"data": render_key_object(state, key), "key": plaintext}, status=201)


async def patch_key(request: web.Request) -> web.Response:
    """`PATCH /keys/{hash}`: name, disabled, limit, limit_reset, include_byok_in_limit."""
    key = _own_key(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid request body")
    fields = _limit_fields(body)
    if "name" in body:
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise ApiError(400, "name must be a non-empty string")
        fields["name"] = body["name"]
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise ApiError(400, "disabled must be a boolean")
        fields["disabled"] = body["disabled"]
    state = emulator(request).state
    for name, value in fields.items():
        setattr(key, name, value)
    key.updated_at = state.clock.now()
    return json_response({"data": render_key_object(state, key)})


async def delete_key(request: web.Request) -> web.Response:
    """`DELETE /keys/{hash}`: the key is gone for good."""
    key = _own_key(request)
    emulator(request).state.revoke(key.hash)
    return json_response({"deleted": True})


def _limit_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The limit settings present in a create/patch body, validated."""
    fields: dict[str, Any] = {}
    if "limit" in body:
        limit: Decimal | None = None
        if body["limit"] is not None:
            try:
                limit = as_money(body["limit"], "limit")
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
            if limit < 0:
                raise ApiError(400, "limit must not be negative")
        fields["limit"] = limit
    if "limit_reset" in body:
        if body["limit_reset"] is not None and body["limit_reset"] not in LIMIT_RESETS:
            raise ApiError(400, "limit_reset must be daily, weekly, monthly or null")
        fields["limit_reset"] = body["limit_reset"]
    if "include_byok_in_limit" in body:
        if not isinstance(body["include_byok_in_limit"], bool):
            raise ApiError(400, "include_byok_in_limit must be a boolean")
        fields["include_byok_in_limit"] = body["include_byok_in_limit"]
    return fields
