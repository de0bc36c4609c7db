"""The key hygiene report: what is risky or stale about a workspace's keys, from what usage already stores."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.insights.repository import InsightsRepository
from owr_usage.insights.schemas import Finding, HygieneItem, HygieneReport, Reset, SuggestedLimit

DORMANT_DAYS = 14
EXPIRING_DAYS = 7
STALE_AFTER = timedelta(hours=24)
# Suggested limits: the p95 of the spend per window over this many days, times the margin.
HISTORY_DAYS = 90
MARGIN = Decimal("1.5")
RESETS: tuple[Reset, ...] = ("daily", "weekly", "monthly")
ORDER: tuple[Finding, ...] = (
    "invalid_stored",
    "expiring",
    "no_limit",
    "missing_upstream",
    "untracked_in_account",
    "stale_sync",
    "dormant",
)


def _item(finding: Finding, name: str, reason: str, action: str, **more: Any) -> HygieneItem:
    return HygieneItem(finding=finding, name=name, reason=reason, action=action, **more)


def _suggestions(amounts: dict[str, Decimal], current_reset: str | None) -> dict[str, Any]:
    limits = [SuggestedLimit(amount_usd=amounts[r], reset=r) for r in RESETS if amounts.get(r, Decimal(0)) > 0]
    if not limits:
        return {}
    reset = current_reset if current_reset in RESETS else "monthly"
    chosen = next((s for s in limits if s.reset == reset), limits[-1])
    return {"suggested_limit": chosen, "suggested_limits": limits}


async def hygiene(session: AsyncSession, *, workspace_id: uuid.UUID, now: datetime) -> HygieneReport:
    """Every finding of the workspace's keys, the most urgent kind first."""
    repo = InsightsRepository(session)
    stored = await repo.stored_keys(workspace_id)
    invalid = await repo.invalid_keys(workspace_id)
    has_lists = await repo.has_key_lists(workspace_id)
    today = now.date()
    no_limit = [k["key_id"] for k in stored if not k["is_management_key"] and k["limit_usd"] is None]
    with_history = [k["key_id"] for k in stored if k["key_id"] in no_limit and k["last_spend_day"] is not None]
    suggested = await repo.suggested_limits(
        workspace_id, with_history, since=today - timedelta(days=HISTORY_DAYS - 1), margin=MARGIN
    )

    items: list[HygieneItem] = []
    for key in stored:
        key_id: uuid.UUID = key["key_id"]
        name = invalid.get(str(key_id)) or key["label"] or str(key_id)
        about = {"key_id": key_id}
        if str(key_id) in invalid:
            items.append(
                _item(
                    "invalid_stored",
                    name,
                    "OpenRouter refuses this key (revoked, disabled or expired) but it is still stored.",
                    "Delete the key from the vault, or store its replacement.",
                    **about,
                )
            )
        expires: datetime | None = key["expires_at"]
        if expires is not None and expires <= now + timedelta(days=EXPIRING_DAYS):
            when = "expired" if expires <= now else "expires"
            items.append(
                _item(
                    "expiring",
                    name,
                    f"The key {when} on {expires.date().isoformat()}.",
                    "Rotate the key before it stops working, then delete the old one.",
                    **about,
                )
            )
        if key_id in no_limit:
            items.append(
                _item(
                    "no_limit",
                    name,
                    "The key has no spending limit at OpenRouter: a leak could spend the whole balance.",
                    "Set a limit at OpenRouter (the suggestion is the p95 of its spend per window x 1.5).",
                    **about,
                    **_suggestions(suggested.get(key_id, {}), key["limit_reset"]),
                )
            )
        if has_lists and not key["is_management_key"] and not key["listed"]:
            items.append(
                _item(
                    "missing_upstream",
                    name,
                    "No key list of the workspace's accounts carries this key any more (deleted at OpenRouter?).",
                    "Check the key at OpenRouter; delete it here if it is gone.",
                    **about,
                )
            )
        observed: datetime = key["latest_observed_at"]
        if now - observed > STALE_AFTER:
            items.append(
                _item(
                    "stale_sync",
                    name,
                    f"The key's last sync was at {observed.isoformat(timespec='minutes')}, over 24 hours ago.",
                    "Sync the key now and check the worker's sync failures.",
                    **about,
                )
            )
        last_spend = key["last_spend_day"]
        if last_spend is not None and last_spend <= today - timedelta(days=DORMANT_DAYS):
            items.append(
                _item(
                    "dormant",
                    name,
                    f"No spend since {last_spend.isoformat()} ({(today - last_spend).days} days).",
                    "Delete or disable the key if nothing uses it any more.",
                    **about,
                )
            )
    for row in await repo.untracked_account_keys(workspace_id):
        items.append(
            _item(
                "untracked_in_account",
                cast(str, row["name"] or row["label"] or row["hash"]),
                "An account lists this key at OpenRouter, but the vault has no copy of it.",
                "Store the key here to track it, or delete it at OpenRouter if it is unused.",
                hash=row["hash"],
            )
        )
    items.sort(key=lambda i: ORDER.index(i.finding))
    return HygieneReport(items=items)
