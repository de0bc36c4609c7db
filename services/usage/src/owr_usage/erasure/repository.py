"""SQL for erased workspaces: tombstones, the shared erasure lock, the workspaces holding rows, and the erasure of
the alerting tables (budgets, rules, channels, the outbox)."""

from __future__ import annotations

import uuid

from owr_shared.repository import TombstoneRepository, delete_workspace_rows
from owr_usage.accounts.models import Account, AccountBalance
from owr_usage.alerts.models import AlertCondition, AlertEvent, AlertRule
from owr_usage.anomalies.models import KeyAnomaly
from owr_usage.budgets.models import Budget
from owr_usage.channels.models import AlertChannel, ChannelAudit
from owr_usage.erasure.models import ErasedWorkspace
from owr_usage.key_actions.models import KeyAction, KeyKillSwitch
from owr_usage.rollups.models import DailyKeyTotal, KeyLink
from owr_usage.snapshots.models import KeyState

# Each by its own index led by workspace_id. An event's deliveries and their attempts go with it, a channel's
# sealed values (and any delivery left) with the channel: the foreign keys cascade along their own indexes.
ALERTING_TABLES = (
    AlertEvent,
    AlertChannel,
    ChannelAudit,
    AlertCondition,
    AlertRule,
    Budget,
    KeyAction,
    KeyKillSwitch,
    KeyAnomaly,
)


class ErasureRepository(TombstoneRepository):
    tombstones = ErasedWorkspace
    # Every other table's rows hang off one of these (a key's state, an account, a link, a rollup, a channel, an
    # event, a rule, a condition, a budget), and each has an index led by workspace_id.
    holders = tuple(
        model.__table__.c.workspace_id
        for model in (
            KeyState,
            Account,
            AccountBalance,
            KeyLink,
            DailyKeyTotal,
            AlertChannel,
            AlertEvent,
            AlertRule,
            AlertCondition,
            Budget,
            KeyAction,
            KeyKillSwitch,
            KeyAnomaly,
        )
    )

    async def delete_alerting(self, workspace_id: uuid.UUID) -> dict[str, int]:
        """The workspace's budgets, rules, conditions, channels (sealed values, audit), outbox and key anomalies;
        rows by table."""
        return await delete_workspace_rows(self.session, workspace_id, ALERTING_TABLES)
