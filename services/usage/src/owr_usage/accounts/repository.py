"""SQL for accounts: balances, key lists and activity; callers own the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from owr_shared.repository import delete_workspace_rows, deleted_rows
from owr_usage.accounts.models import Account, AccountBalance, AccountKey, ActivityDay, ActivityRow

# asyncpg takes at most 32767 parameters per statement; activity rows have 16 columns.
INSERT_CHUNK = 1000


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- ingestion (internal API) --------------------------------------------------------------

    async def insert_balance(self, values: dict[str, Any]) -> bool:
        """Store one balance; False when this (key, observed_at) is already stored."""
        result = await self.session.execute(
            insert(AccountBalance)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[AccountBalance.management_key_id, AccountBalance.observed_at])
            .returning(AccountBalance.management_key_id)
        )
        return result.first() is not None

    async def claim_key_list(
        self, management_key_id: uuid.UUID, workspace_id: uuid.UUID, observed_at: dt.datetime
    ) -> bool:
        """Lock the account and claim the replacement of its key list.

        True when `observed_at` is not older than the list applied last (a stale answer, from a job that
        finished late, must not replace a newer list). The row stays locked until the transaction ends.
        """
        stmt = insert(Account).values(
            management_key_id=management_key_id, workspace_id=workspace_id, keys_observed_at=observed_at
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[Account.management_key_id],
            set_={"keys_observed_at": stmt.excluded.keys_observed_at, "updated_at": func.now()},
            where=Account.keys_observed_at.is_(None) | (Account.keys_observed_at <= stmt.excluded.keys_observed_at),
        ).returning(Account.management_key_id)
        return (await self.session.execute(upsert)).first() is not None

    async def replace_keys(self, management_key_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        """Make the account's stored keys exactly `rows` (unique by hash)."""
        hashes = [row["hash"] for row in rows]
        await self.session.execute(
            delete(AccountKey).where(AccountKey.management_key_id == management_key_id, AccountKey.hash.not_in(hashes))
        )
        for start in range(0, len(rows), INSERT_CHUNK):
            stmt = insert(AccountKey).values(list(rows[start : start + INSERT_CHUNK]))
            updated = {c.name: stmt.excluded[c.name] for c in AccountKey.__table__.columns if not c.primary_key}
            await self.session.execute(
                stmt.on_conflict_do_update(index_elements=[AccountKey.management_key_id, AccountKey.hash], set_=updated)
            )

    async def labels(self, management_key_id: uuid.UUID) -> set[str]:
        """The labels of the account's stored key list."""
        rows = await self.session.scalars(
            select(AccountKey.label).where(AccountKey.management_key_id == management_key_id).distinct()
        )
        return {label for label in rows.all() if label is not None}

    async def claim_activity_days(
        self,
        management_key_id: uuid.UUID,
        api_key_hash: str,
        workspace_id: uuid.UUID,
        observed_at: dt.datetime,
        rows_by_date: dict[dt.date, int],
    ) -> list[dt.date]:
        """Lock the (key hash, date) markers, in date order, and return the dates this answer may replace.

        A date whose stored answer is newer than `observed_at` is left alone (its marker stays locked
        for the transaction all the same, so two replacements of one day run one after the other).
        """
        values = [
            {
                "management_key_id": management_key_id,
                "api_key_hash": api_key_hash,
                "date": day,
                "workspace_id": workspace_id,
                "observed_at": observed_at,
                "rows": count,
            }
            for day, count in sorted(rows_by_date.items())
        ]
        if not values:
            return []
        stmt = insert(ActivityDay).values(values)
        upsert = stmt.on_conflict_do_update(
            index_elements=[ActivityDay.management_key_id, ActivityDay.api_key_hash, ActivityDay.date],
            set_={"observed_at": stmt.excluded.observed_at, "rows": stmt.excluded.rows},
            where=ActivityDay.observed_at <= stmt.excluded.observed_at,
        ).returning(ActivityDay.date)
        return sorted(day for (day,) in (await self.session.execute(upsert)).all())

    async def replace_activity(
        self,
        management_key_id: uuid.UUID,
        api_key_hash: str,
        dates: Sequence[dt.date],
        rows: Sequence[dict[str, Any]],
    ) -> None:
        """Delete the key hash's rows of `dates`, then insert `rows` (all dated within `dates`)."""
        if not dates:
            return
        await self.session.execute(
            delete(ActivityRow).where(
                ActivityRow.management_key_id == management_key_id,
                ActivityRow.api_key_hash == api_key_hash,
                ActivityRow.date.in_(list(dates)),
            )
        )
        for start in range(0, len(rows), INSERT_CHUNK):
            await self.session.execute(insert(ActivityRow).values(list(rows[start : start + INSERT_CHUNK])))

    # --- reads (workspace-scoped) --------------------------------------------------------------

    async def activity_by_model(
        self, workspace_id: uuid.UUID, management_key_id: uuid.UUID, api_key_hash: str, first: dt.date, last: dt.date
    ) -> Sequence[Any]:
        """One key hash's activity in [first, last], summed per (date, model): several endpoints make one model."""
        rows = await self.session.execute(
            select(
                ActivityRow.date,
                ActivityRow.model,
                func.sum(ActivityRow.usage).label("cost"),
                func.sum(ActivityRow.byok_usage_inference).label("byok_cost"),
                func.sum(ActivityRow.requests).label("requests"),
                func.sum(ActivityRow.prompt_tokens).label("prompt_tokens"),
                func.sum(ActivityRow.completion_tokens).label("completion_tokens"),
                func.sum(ActivityRow.reasoning_tokens).label("reasoning_tokens"),
            )
            .where(
                ActivityRow.workspace_id == workspace_id,
                ActivityRow.management_key_id == management_key_id,
                ActivityRow.api_key_hash == api_key_hash,
                ActivityRow.date >= first,
                ActivityRow.date <= last,
            )
            .group_by(ActivityRow.date, ActivityRow.model)
            .order_by(ActivityRow.date, ActivityRow.model)
        )
        return rows.all()

    async def fetched_days(
        self, workspace_id: uuid.UUID, management_key_id: uuid.UUID, api_key_hash: str, first: dt.date, last: dt.date
    ) -> set[dt.date]:
        """Days in [first, last] whose activity was fetched for this hash (no rows then means no spend)."""
        days = await self.session.scalars(
            select(ActivityDay.date).where(
                ActivityDay.workspace_id == workspace_id,
                ActivityDay.management_key_id == management_key_id,
                ActivityDay.api_key_hash == api_key_hash,
                ActivityDay.date >= first,
                ActivityDay.date <= last,
            )
        )
        return set(days.all())

    async def latest_balance(self, workspace_id: uuid.UUID, management_key_id: uuid.UUID) -> AccountBalance | None:
        return (
            await self.session.scalars(
                select(AccountBalance)
                .where(
                    AccountBalance.workspace_id == workspace_id,
                    AccountBalance.management_key_id == management_key_id,
                )
                .order_by(AccountBalance.observed_at.desc())
                .limit(1)
            )
        ).one_or_none()

    # --- retention and erasure (internal API) --------------------------------------------------

    async def delete_before(self, cutoff: dt.datetime, cutoff_day: dt.date) -> dict[str, int]:
        """Activity dated before `cutoff_day`; balances before `cutoff` except each account's latest."""
        activity = await deleted_rows(self.session, delete(ActivityRow).where(ActivityRow.date < cutoff_day))
        activity_days = await deleted_rows(self.session, delete(ActivityDay).where(ActivityDay.date < cutoff_day))
        newer = aliased(AccountBalance)
        has_newer = exists().where(
            newer.management_key_id == AccountBalance.management_key_id,
            newer.observed_at > AccountBalance.observed_at,
        )
        balances = await deleted_rows(
            self.session, delete(AccountBalance).where(AccountBalance.observed_at < cutoff, has_newer)
        )
        return {"activity": activity, "activity_days": activity_days, "account_balances": balances}

    async def delete_workspace(self, workspace_id: uuid.UUID) -> dict[str, int]:
        models = (ActivityRow, ActivityDay, AccountKey, AccountBalance, Account)
        return await delete_workspace_rows(self.session, workspace_id, models)
