"""SQL of budgets' rows (their figures and events: `figures_repository`); callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import deleted_rows, page_rows
from owr_usage.budgets.models import Budget
from owr_usage.channels.models import AlertChannel
from owr_usage.snapshots.models import KeyState


class BudgetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- rows (workspace-scoped) -------------------------------------------------------------------

    async def add(self, budget: Budget) -> Budget:
        self.session.add(budget)
        await self.session.flush()
        return budget

    async def get(self, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
        return (
            await self.session.scalars(
                select(Budget).where(Budget.id == budget_id, Budget.workspace_id == workspace_id)
            )
        ).one_or_none()

    async def with_kill_switch(self, budget_ids: Sequence[uuid.UUID]) -> Sequence[Budget]:
        """Of these budgets, the key budgets whose kill switch is on."""
        if not budget_ids:
            return []
        statement = select(Budget).where(
            Budget.id.in_(list(budget_ids)), Budget.disable_key_on_exceed, Budget.scope_type == "key"
        )
        return (await self.session.scalars(statement)).all()

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[Budget], int]:
        """Newest first."""
        query = (
            select(Budget)
            .where(Budget.workspace_id == workspace_id)
            .order_by(Budget.created_at.desc(), Budget.id.desc())
        )
        rows, total = await page_rows(self.session, query, offset=offset, limit=limit)
        return [row[0] for row in rows], total

    async def remove(self, workspace_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
        statement = delete(Budget).where(Budget.id == budget_id, Budget.workspace_id == workspace_id)
        return await deleted_rows(self.session, statement) > 0

    async def known_channels(self, workspace_id: uuid.UUID, channel_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `channel_ids` that are channels of the workspace."""
        if not channel_ids:
            return set()
        rows = await self.session.scalars(
            select(AlertChannel.id).where(
                AlertChannel.workspace_id == workspace_id, AlertChannel.id.in_(list(channel_ids))
            )
        )
        return set(rows.all())

    async def latest_observation(self, workspace_id: uuid.UUID) -> datetime | None:
        """OpenRouter's clock as last seen for the workspace: its keys' latest snapshot time."""
        return await self.session.scalar(
            select(func.max(KeyState.latest_observed_at)).where(KeyState.workspace_id == workspace_id)
        )
