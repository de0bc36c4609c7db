"""SQL for erased workspaces: tombstones, the shared erasure lock, and the workspaces holding rows."""

from __future__ import annotations

from owr_shared.repository import TombstoneRepository
from owr_usage.accounts.models import Account, AccountBalance
from owr_usage.alerts.models import AlertCondition, AlertRule
from owr_usage.budgets.models import Budget
from owr_usage.erasure.models import ErasedWorkspace
from owr_usage.rollups.models import DailyKeyTotal, KeyLink
from owr_usage.snapshots.models import KeyState


class ErasureRepository(TombstoneRepository):
    tombstones = ErasedWorkspace
    # Every other table's rows hang off one of these (a key's state, an account, a link, a rollup, a budget, a
    # rule's switch or condition), and each has an index led by workspace_id.
    holders = tuple(
        model.__table__.c.workspace_id
        for model in (KeyState, Account, AccountBalance, KeyLink, DailyKeyTotal, Budget, AlertRule, AlertCondition)
    )
