"""The built-in rules: each workspace's switches, and their evaluation as syncs and balances come in.

Stateful rules (a key invalid, syncs failing, a balance or runway low) are tracked conditions (`conditions.py`):
one event when the condition starts to hold, a recovery only after an event, re-armed when it ends. The others
are once per what they are about: an expiry date, a limit window. A rule switched off raises nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import KeyStatusItem
from owr_usage.accounts.repository import AccountRepository
from owr_usage.alerts import service as alerts
from owr_usage.alerts.service import money
from owr_usage.budgets.periods import Period, window
from owr_usage.erasure import service as erasure
from owr_usage.key_actions import service as key_actions
from owr_usage.rules.conditions import Conditions, event
from owr_usage.rules.repository import ConditionKey, RuleRepository
from owr_usage.rules.schemas import (
    PARAMS,
    RULES,
    BalanceParams,
    ExpiringParams,
    FailingParams,
    LimitParams,
    RuleName,
    RulesUpdate,
    RulesView,
    RuleView,
    RunwayParams,
)
from owr_usage.snapshots.models import Snapshot

log = get_logger(__name__)
LIMIT_WINDOWS = ("daily", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class Switch:
    enabled: bool
    params: Any


def _switches(rows: Iterable[Any]) -> dict[RuleName, Switch]:
    """Every rule's switch: the stored one, or on with its defaults (stored params that no longer validate too)."""
    found = {rule: Switch(True, PARAMS[rule]()) for rule in RULES}
    for row in rows:
        rule = cast(RuleName, row.rule)
        if rule not in found:
            continue
        try:
            found[rule] = Switch(row.enabled, PARAMS[rule].model_validate(row.params))
        except ValidationError:
            found[rule] = Switch(row.enabled, PARAMS[rule]())
    return found


async def switches_of(
    session: AsyncSession, workspace_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[RuleName, Switch]]:
    ids = set(workspace_ids)
    rows = await RuleRepository(session).settings(ids)
    return {w: _switches(row for row in rows if row.workspace_id == w) for w in ids}


# --- the API -------------------------------------------------------------------------------------------


async def view(session: AsyncSession, workspace_id: uuid.UUID) -> RulesView:
    switches = (await switches_of(session, [workspace_id]))[workspace_id]
    return RulesView(
        items=[
            RuleView(rule=rule, enabled=switches[rule].enabled, params=switches[rule].params.model_dump())
            for rule in RULES
        ]
    )


async def put(session: AsyncSession, workspace_id: uuid.UUID, update: RulesUpdate) -> RulesView:
    rows = [
        {
            "rule": item.rule,
            "enabled": item.enabled,
            "params": (item.params or PARAMS[item.rule]()).model_dump(mode="json"),
        }
        for item in update.items
    ]
    await RuleRepository(session).put_settings(workspace_id, rows)
    return await view(session, workspace_id)


# --- keys ----------------------------------------------------------------------------------------------


async def on_key_status(session: AsyncSession, items: Sequence[KeyStatusItem]) -> int:
    """Key rules over a batch of sync outcomes (oldest first): invalid, expiring, near its limit, syncs failing
    and recovered. How many events were raised."""
    erased = await erasure.erased_among(session, {item.workspace_id for item in items})
    kept = sorted((i for i in items if i.workspace_id not in erased), key=lambda i: i.observed_at)
    # A key disabled at OpenRouter (the kill switch, or by hand there) answers 401 like a revoked one: it is not
    # invalid, and `key.disabled` has said why already.
    disabled = await key_actions.disabled_upstream(session, (i.key_id for i in kept if i.status == "invalid"))
    kept = [i for i in kept if not (i.status == "invalid" and i.key_id in disabled)]
    if not kept:
        return 0
    repo = RuleRepository(session)
    switches = await switches_of(session, {item.workspace_id for item in kept})
    snapshots = await repo.latest_snapshots(item.key_id for item in kept)
    keys = [(i.workspace_id, rule, str(i.key_id)) for i in kept for rule in ("key.invalid", "sync.failing")]
    conditions = Conditions(await repo.conditions(keys))
    events: list[alerts.NewEvent] = []
    for item in kept:
        snapshot = snapshots.get(item.key_id)
        if snapshot is not None and snapshot.workspace_id != item.workspace_id:
            snapshot = None
        events += _key_events(item, snapshot, switches[item.workspace_id], conditions)
    await conditions.save(repo)
    return await alerts.raise_events(session, events)


def _key_events(
    item: KeyStatusItem, snapshot: Snapshot | None, switches: dict[RuleName, Switch], conditions: Conditions
) -> list[alerts.NewEvent]:
    key, at, workspace = str(item.key_id), item.observed_at, item.workspace_id
    about = {"key_id": key, "key_name": item.name, "label": snapshot.label if snapshot else None}
    invalid: ConditionKey = (workspace, "key.invalid", key)
    failing: ConditionKey = (workspace, "sync.failing", key)
    found: list[alerts.NewEvent | None] = []
    if item.status == "invalid":
        enabled = switches["key.invalid"].enabled
        found.append(conditions.track(invalid, holds=True, at=at, enabled=enabled, data=about))
    elif item.status == "error":
        rule = switches["sync.failing"]
        hours = cast(FailingParams, rule.params).hours
        found.append(
            conditions.track(
                failing,
                holds=True,
                at=at,
                enabled=rule.enabled,
                data={**about, "hours": hours},
                ripe=lambda c: at - c.since >= timedelta(hours=hours),
            )
        )
    else:
        conditions.end(invalid)
        ended = conditions.end(failing)
        if ended is not None and ended.fired_at is not None and switches["sync.failing"].enabled:
            since = ended.since.isoformat()
            data = {**about, "since": since, "recovered_at": at.isoformat()}
            found.append(event(workspace, "sync.recovered", f"sync.recovered:{key}:{since}", at, data))
        if snapshot is not None:
            found.append(_expiring(snapshot, switches["key.expiring"], about))
            found.append(_near_limit(snapshot, switches["key.limit_threshold_crossed"], about))
    return [raised for raised in found if raised is not None]


def _expiring(snapshot: Snapshot, switch: Switch, about: dict[str, Any]) -> alerts.NewEvent | None:
    """An `expires_at` within `days` of the snapshot; once per expiry date."""
    days = cast(ExpiringParams, switch.params).days
    expires, at = snapshot.expires_at, snapshot.observed_at
    if not switch.enabled or expires is None or not (at < expires <= at + timedelta(days=days)):
        return None
    data = {**about, "expires_at": expires.isoformat(), "days": days}
    return event(
        snapshot.workspace_id, "key.expiring", f"key.expiring:{about['key_id']}:{expires.isoformat()}", at, data
    )


def _near_limit(snapshot: Snapshot, switch: Switch, about: dict[str, Any]) -> alerts.NewEvent | None:
    """Within `percent` % of its own limit in its current OpenRouter window (lifetime when it never resets)."""
    percent = cast(LimitParams, switch.params).percent
    limit, remaining = snapshot.limit, snapshot.limit_remaining
    if not switch.enabled or limit is None or remaining is None or limit <= 0 or remaining * 100 > limit * percent:
        return None
    reset = snapshot.limit_reset
    start = window(cast(Period, reset), snapshot.observed_at)[0].isoformat() if reset in LIMIT_WINDOWS else None
    data = {
        **about,
        "limit_usd": money(limit),
        "limit_remaining_usd": money(remaining),
        "limit_reset": reset,
        "window_start": start,
        "percent_used": money(((limit - remaining) / limit * 100).quantize(Decimal("0.01"))),
        "threshold": percent,
    }
    dedup = f"key.limit_threshold_crossed:{about['key_id']}:{start or 'lifetime'}:{percent}"
    return event(snapshot.workspace_id, "key.limit_threshold_crossed", dedup, snapshot.observed_at, data)


# --- accounts ------------------------------------------------------------------------------------------


async def on_balance(session: AsyncSession, workspace_id: uuid.UUID, management_key_id: uuid.UUID) -> int:
    """Account rules on the account's newest known balance: below an amount, or a runway (balance ÷ the daily
    burn since the oldest balance of the last 7 days, at least a day back) under some days."""
    balance = await AccountRepository(session).latest_balance(workspace_id, management_key_id)
    if balance is None or not balance.known:
        return 0
    repo = RuleRepository(session)
    switches = (await switches_of(session, [workspace_id]))[workspace_id]
    subject, at = str(management_key_id), balance.observed_at
    low: ConditionKey = (workspace_id, "account.balance_low", subject)
    short: ConditionKey = (workspace_id, "account.runway_low", subject)
    conditions = Conditions(await repo.conditions([low, short]))
    label = (await repo.latest_snapshots([management_key_id])).get(management_key_id)
    left = balance.total_credits - balance.total_usage
    about: dict[str, Any] = {
        "management_key_id": subject,
        "label": label.label if label is not None and label.workspace_id == workspace_id else None,
        "balance_usd": money(left),
    }
    balance_rule, runway_rule = switches["account.balance_low"], switches["account.runway_low"]
    amount = cast(BalanceParams, balance_rule.params).amount_usd
    data = {**about, "threshold_usd": money(amount)}
    events = [conditions.track(low, holds=left < amount, at=at, enabled=balance_rule.enabled, data=data)]
    reference = await repo.burn_reference(workspace_id, management_key_id, at)
    if reference is not None:
        days = Decimal((at - reference.observed_at).total_seconds()) / 86400
        burn = (balance.total_usage - reference.total_usage) / days
        runway = left / burn if burn > 0 else None
        wanted = cast(RunwayParams, runway_rule.params).days
        runway_data = {
            **about,
            "burn_usd_per_day": money(burn.quantize(Decimal("0.000001"))),
            "runway_days": None if runway is None else money(runway.quantize(Decimal("0.01"))),
            "days": wanted,
        }
        holds = runway is not None and runway < wanted
        events.append(conditions.track(short, holds=holds, at=at, enabled=runway_rule.enabled, data=runway_data))
    await conditions.save(repo)
    return await alerts.raise_events(session, [raised for raised in events if raised is not None])
