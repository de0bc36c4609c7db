"""OpenRouter's bodies as the worker's and usage's tests need them."""

from __future__ import annotations

from typing import Any


def key_list_row(**fields: Any) -> dict[str, Any]:
    """One item of `GET /keys` with example figures; `fields` (at least `hash`, `name`, `label`) replace or add."""
    row: dict[str, Any] = {
        "hash": None,
        "name": None,
        "label": None,
        "disabled": False,
        "limit": 10,
        "limit_remaining": 10,
        "limit_reset": None,
        "include_byok_in_limit": False,
        "usage": 0.1015644762,
        "usage_daily": 0,
        "usage_weekly": 0,
        "usage_monthly": 0,
        "byok_usage": 0,
        "byok_usage_daily": 0,
        "byok_usage_weekly": 0,
        "byok_usage_monthly": 0,
        "created_at": "2025-02-19T20:52:27.363244+00:00",
        "updated_at": "2025-02-19T21:24:11.708154+00:00",
        "creator_user_id": None,
        "expires_at": None,
        "workspace_id": "0df9e665-3f8e-4c4b-9d5e-1f2a3b4c5d6e",
    }
    row.update(fields)
    return row
