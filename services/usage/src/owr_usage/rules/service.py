"""The built-in rules: each workspace's switches, and their evaluation as syncs and balances come in.

Stateful rules keep a row in `alert_conditions` while their condition holds (a key invalid, syncs failing, a
balance or runway low): the event goes out once when it starts to hold (`fired_at`), a recovery is reported
only after an event, and the row's removal re-arms the rule. A rule switched off keeps tracking its
conditions but raises nothing. Dedup keys name the rule, its subject and the condition's start (or window),
so a repeated report never raises an event twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import EventType, KeyStatusItem
from owr_usage.accounts.repository import AccountRepository
from owr_usage.alerts import service as alerts
from owr_usage.budgets.periods import Period, window
from owr_usage.erasure import service as erasure
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


def money(value: Decimal) -> str:
    return format(value, "f")


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
        {"rule": item.rule, "enabled": item.enabled, "params": item.params.model_dump(mode="json")}
        for item in update.items
    ]
    await RuleRepository(session).put_settings(workspace_id, rows)
    return await view(session, workspace_id)


# --- conditions ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Condition:
    since: datetime
    fired_at: datetime | None = None


class Conditions:
    """The tracked conditions a batch reads and changes, written back at the end in two statements."""

    def __init__(self, loaded: dict[ConditionKey, Any]) -> None:
        self.state: dict[ConditionKey, Condition | None] = {
            key: Condition(row.since, row.fired_at) for key, row in loaded.items()
        }
        self.loaded = set(loaded)
        self.touched: set[ConditionKey] = set()

    def get(self, key: ConditionKey) -> Condition | None:
        return self.state.get(key)

    def hold(self, key: ConditionKey, at: datetime) -> Condition:
        condition = self.state.get(key)
        if condition is None:
            condition = self.state[key] = Condition(since=at)
        self.touched.add(key)
        return condition

    def end(self, key: ConditionKey) -> Condition | None:
        condition = self.state.get(key)
        self.state[key] = None
        self.touched.add(key)
        return condition

    def track(
        self,
        key: ConditionKey,
        *,
        holds: bool,
        at: datetime,
        enabled: bool,
        event: Callable[[Condition], alerts.NewEvent],
        ripe: Callable[[Condition], bool] = lambda _: True,
    ) -> alerts.NewEvent | None:
        """The condition holds or not at `at`; its event the first time it holds (and is `ripe`) while enabled."""
        if not holds:
            self.end(key)
            return None
        condition = self.hold(key, at)
        if not enabled or condition.fired_at is not None or not ripe(condition):
            return None
        condition.fired_at = at
        return event(condition)

    async def save(self, repo: RuleRepository) -> None:
        kept: list[dict[str, Any]] = [
            {"workspace_id": w, "rule": r, "subject": s, "since": c.since, "fired_at": c.fired_at, "data": {}}
            for (w, r, s), c in self.state.items()
            if (w, r, s) in self.touched and c is not None
        ]
        await repo.save_conditions(kept)
        await repo.clear_conditions(k for k in self.touched & self.loaded if self.state.get(k) is None)


def _event(workspace_id: uuid.UUID, type: str, dedup_key: str, at: datetime, data: dict[str, Any]) -> alerts.NewEvent:
    return alerts.NewEvent(
        workspace_id=workspace_id, type=cast(EventType, type), data=data, occurred_at=at, dedup_key=dedup_key
    )


# --- keys ----------------------------------------------------------------------------------------------


async def on_key_status(session: AsyncSession, items: Sequence[KeyStatusItem]) -> int:
    """Key rules over a batch of sync outcomes (oldest first): invalid, expiring, near its limit, syncs failing
    and recovered. How many events were raised."""
    erased = await erasure.erased_among(session, {item.workspace_id for item in items})
    kept = sorted((i for i in items if i.workspace_id not in erased), key=lambda i: i.observed_at)
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
        found.append(
            conditions.track(
                invalid,
                holds=True,
                at=at,
                enabled=switches["key.invalid"].enabled,
                event=lambda c: _event(
                    workspace,
                    "key.invalid",
                    f"key.invalid:{key}:{c.since.isoformat()}",
                    at,
                    {**about, "since": c.since.isoformat()},
                ),
            )
        )
    elif item.status == "error":
        rule = switches["sync.failing"]
        hours = cast(FailingParams, rule.params).hours
        found.append(
            conditions.track(
                failing,
                holds=True,
                at=at,
                enabled=rule.enabled,
                ripe=lambda c: at - c.since >= timedelta(hours=hours),
                event=lambda c: _event(
                    workspace,
                    "sync.failing",
                    f"sync.failing:{key}:{c.since.isoformat()}",
                    at,
                    {**about, "since": c.since.isoformat(), "hours": hours},
                ),
            )
        )
    else:
        conditions.end(invalid)
        ended = conditions.end(failing)
        if ended is not None and ended.fired_at is not None and switches["sync.failing"].enabled:
            data = {**about, "since": ended.since.isoformat(), "recovered_at": at.isoformat()}
            found.append(
                _event(workspace, "sync.recovered", f"sync.recovered:{key}:{ended.since.isoformat()}", at, data)
            )
        if snapshot is not None:
            found += [
                _expiring(snapshot, switches["key.expiring"], about),
                _near_limit(snapshot, switches["key.limit_threshold_crossed"], about),
            ]
    return [event for event in found if event is not None]


def _expiring(snapshot: Snapshot, switch: Switch, about: dict[str, Any]) -> alerts.NewEvent | None:
    days = cast(ExpiringParams, switch.params).days
    expires, at = snapshot.expires_at, snapshot.observed_at
    if not switch.enabled or expires is None or not (at < expires <= at + timedelta(days=days)):
        return None
    data = {**about, "expires_at": expires.isoformat(), "days": days}
    return _event(
        snapshot.workspace_id, "key.expiring", f"key.expiring:{about['key_id']}:{expires.isoformat()}", at, data
    )


def _near_limit(snapshot: Snapshot, switch: Switch, about: dict[str, Any]) -> alerts.NewEvent | None:
    """Within `percent` % of its own limit in its current OpenRouter window (lifetime when it never resets)."""
    percent = cast(LimitParams, switch.params).percent
    limit, remaining = snapshot.limit, snapshot.limit_remaining
    if not switch.enabled or limit is None or remaining is None or limit <= 0 or remaining * 100 > limit * percent:
        return None
    reset = snapshot.limit_reset
    start = window(cast(Period, reset), snapshot.observed_at)[0].isoformat() if reset in LIMIT_WINDOWS else "lifetime"
    used = ((limit - remaining) / limit * 100).quantize(Decimal("0.01"))
    data = {
        **about,
        "limit_usd": money(limit),
        "limit_remaining_usd": money(remaining),
        "limit_reset": reset,
        "window_start": None if start == "lifetime" else start,
        "percent_used": money(used),
        "threshold": percent,
    }
    dedup = f"key.limit_threshold_crossed:{about['key_id']}:{start}:{percent}"
    return _event(snapshot.workspace_id, "key.limit_threshold_crossed", dedup, snapshot.observed_at, data)


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
    about = {
        "management_key_id": subject,
        "label": label.label if label is not None and label.workspace_id == workspace_id else None,
        "balance_usd": money(left),
    }
    amount = cast(BalanceParams, switches["account.balance_low"].params).amount_usd
    events = [
        conditions.track(
            low,
            holds=left < amount,
            at=at,
            enabled=switches["account.balance_low"].enabled,
            event=lambda c: _event(
                workspace_id,
                "account.balance_low",
                f"account.balance_low:{subject}:{c.since.isoformat()}",
                at,
                {**about, "threshold_usd": money(amount)},
            ),
        )
    ]
    reference = await repo.burn_reference(workspace_id, management_key_id, at)
    if reference is not None:
        days = Decimal((at - reference.observed_at).total_seconds()) / 86400
        burn = (balance.total_usage - reference.total_usage) / days
        runway = left / burn if burn > 0 else None
        wanted = cast(RunwayParams, switches["account.runway_low"].params).days
        events.append(
            conditions.track(
                short,
                holds=runway is not None and runway < wanted,
                at=at,
                enabled=switches["account.runway_low"].enabled,
                event=lambda c: _event(
                    workspace_id,
                    "account.runway_low",
                    f"account.runway_low:{subject}:{c.since.isoformat()}",
                    at,
                    {
                        **about,
                        "burn_usd_per_day": money(burn.quantize(Decimal("0.000001"))),
                        "runway_days": money(cast(Decimal, runway).quantize(Decimal("0.01"))),
                        "days": wanted,
                    },
                ),
            )
        )
    await conditions.save(repo)
    return await alerts.raise_events(session, [event for event in events if event is not None])


async def erase(session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, int]:
    return await RuleRepository(session).delete_workspace(workspace_id)
