"""Tracked conditions: a row in `alert_conditions` while a rule's condition holds for a subject, and the event it
raises once when it starts to hold. The event's type is the rule's name and its dedup key
`{rule}:{subject}:{since}`, so a repeated report never raises it twice and the row's removal re-arms the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from owr_shared.wire.alerts import EventType
from owr_usage.alerts.service import NewEvent
from owr_usage.rules.repository import ConditionKey, RuleRepository


def event(workspace_id: uuid.UUID, type: str, dedup_key: str, at: datetime, data: dict[str, Any]) -> NewEvent:
    return NewEvent(
        workspace_id=workspace_id, type=cast(EventType, type), data=data, occurred_at=at, dedup_key=dedup_key
    )


@dataclass(slots=True)
class Condition:
    since: datetime
    fired_at: datetime | None = None


class Conditions:
    """The conditions a batch reads and changes, written back at the end in two statements (`save`)."""

    def __init__(self, loaded: dict[ConditionKey, Any]) -> None:
        self.state: dict[ConditionKey, Condition | None] = {
            key: Condition(row.since, row.fired_at) for key, row in loaded.items()
        }
        self.loaded = set(loaded)
        self.touched: set[ConditionKey] = set()

    def end(self, key: ConditionKey) -> Condition | None:
        """The condition no longer holds; what it was."""
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
        data: dict[str, Any],
        ripe: Callable[[Condition], bool] = lambda _: True,
    ) -> NewEvent | None:
        """The condition holds or not at `at`: its event (with `data` and `since`) the first time it holds and is
        `ripe` while the rule is on. A rule switched off keeps tracking, so switching it on tells what holds."""
        if not holds:
            self.end(key)
            return None
        workspace_id, rule, subject = key
        condition = self.state.get(key)
        if condition is None:
            condition = self.state[key] = Condition(since=at)
        self.touched.add(key)
        if not enabled or condition.fired_at is not None or not ripe(condition):
            return None
        condition.fired_at = at
        since = condition.since.isoformat()
        return event(workspace_id, rule, f"{rule}:{subject}:{since}", at, {**data, "since": since})

    async def save(self, repo: RuleRepository) -> None:
        kept: list[dict[str, Any]] = [
            {"workspace_id": w, "rule": r, "subject": s, "since": c.since, "fired_at": c.fired_at, "data": {}}
            for (w, r, s), c in self.state.items()
            if (w, r, s) in self.touched and c is not None
        ]
        await repo.save_conditions(kept)
        await repo.clear_conditions(_ended(self))


def _ended(conditions: Conditions) -> Iterable[ConditionKey]:
    return (k for k in conditions.touched & conditions.loaded if conditions.state.get(k) is None)
