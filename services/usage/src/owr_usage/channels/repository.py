"""SQL of the channels domain: channels, their sealed values and their audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.envelope import SealedSecret
from owr_shared.repository import page_rows
from owr_usage.channels.models import AlertChannel, ChannelAudit, ChannelConfirmation, ChannelSecret

_LOCK_WORKSPACE_CHANNELS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('owr_usage.channels:' || CAST(CAST(:ws AS uuid) AS text), 0))"
)


class ChannelRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_locked(self, workspace_id: uuid.UUID) -> int:
        """The workspace's channels, counted under its advisory lock: no other addition to the workspace counts
        or inserts before this transaction ends (two statements, so the count sees what the holder committed)."""
        await self.session.execute(_LOCK_WORKSPACE_CHANNELS, {"ws": workspace_id})
        count = await self.session.scalar(
            select(func.count()).select_from(AlertChannel).where(AlertChannel.workspace_id == workspace_id)
        )
        return int(count or 0)

    async def insert(self, values: dict[str, Any]) -> AlertChannel:
        row = AlertChannel(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[AlertChannel], int]:
        """Newest first, with the workspace's count."""
        query = (
            select(AlertChannel)
            .where(AlertChannel.workspace_id == workspace_id)
            .order_by(AlertChannel.created_at.desc(), AlertChannel.id)
        )
        rows, total = await page_rows(self.session, query, offset=offset, limit=limit)
        return [row[0] for row in rows], total

    async def get(
        self, workspace_id: uuid.UUID | None, channel_id: uuid.UUID, *, for_update: bool = False
    ) -> AlertChannel | None:
        """The channel (in `workspace_id` when given; the worker's routes span workspaces)."""
        query = select(AlertChannel).where(AlertChannel.id == channel_id)
        if workspace_id is not None:
            query = query.where(AlertChannel.workspace_id == workspace_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def by_ids(self, channel_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AlertChannel]:
        rows = (
            await self.session.execute(select(AlertChannel).where(AlertChannel.id.in_(list(channel_ids))))
        ).scalars()
        return {row.id: row for row in rows}

    async def delete(self, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> AlertChannel | None:
        """Delete the channel; its sealed values, deliveries and their attempts go with it (foreign keys)."""
        row = await self.get(workspace_id, channel_id, for_update=True)
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()
        return row

    async def put_secret(
        self,
        *,
        channel_id: uuid.UUID,
        workspace_id: uuid.UUID,
        kind: str,
        sealed: SealedSecret,
        expires_at: datetime | None = None,
    ) -> None:
        """Store (or replace) the channel's sealed value of `kind`."""
        values = {
            "ciphertext": sealed.ciphertext,
            "nonce": sealed.nonce,
            "wrapped_dek": sealed.wrapped_dek,
            "dek_nonce": sealed.dek_nonce,
            "kek_version": sealed.kek_version,
            "expires_at": expires_at,
        }
        statement = (
            pg_insert(ChannelSecret)
            .values(channel_id=channel_id, workspace_id=workspace_id, kind=kind, **values)
            .on_conflict_do_update(index_elements=["channel_id", "kind"], set_=values)
        )
        await self.session.execute(statement)

    async def secret(self, channel_id: uuid.UUID, kind: str) -> ChannelSecret | None:
        query = select(ChannelSecret).where(ChannelSecret.channel_id == channel_id, ChannelSecret.kind == kind)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def sending_values(self, channel_ids: Iterable[uuid.UUID], now: datetime) -> Sequence[ChannelSecret]:
        """The channels' targets and the secrets that sign now (a previous secret until it expires)."""
        query = select(ChannelSecret).where(
            ChannelSecret.channel_id.in_(list(channel_ids)),
            or_(
                ChannelSecret.kind.in_(("target", "secret")),
                and_(ChannelSecret.kind == "previous_secret", ChannelSecret.expires_at > now),
            ),
        )
        return (await self.session.execute(query)).scalars().all()

    async def delete_expired_secrets(self, channel_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            delete(ChannelSecret).where(
                ChannelSecret.channel_id == channel_id,
                ChannelSecret.kind == "previous_secret",
                ChannelSecret.expires_at <= now,
            )
        )

    async def audit(self, rows: Sequence[dict[str, Any]]) -> None:
        """Audit rows `{workspace_id, channel_id, action, actor, at}`, in one statement."""
        if rows:
            await self.session.execute(pg_insert(ChannelAudit), list(rows))

    async def put_confirmation(
        self, *, channel_id: uuid.UUID, workspace_id: uuid.UUID, token_hash: bytes, expires_at: datetime
    ) -> None:
        """Store the channel's confirmation token (its hash), replacing an earlier one: only the newest link works."""
        values = {"token_hash": token_hash, "expires_at": expires_at}
        statement = (
            pg_insert(ChannelConfirmation)
            .values(channel_id=channel_id, workspace_id=workspace_id, **values)
            .on_conflict_do_update(index_elements=["channel_id"], set_=values)
        )
        await self.session.execute(statement)

    async def take_confirmation(self, token_hash: bytes) -> ChannelConfirmation | None:
        """Delete the confirmation with this hash and answer it: a token works once."""
        statement = (
            delete(ChannelConfirmation)
            .where(ChannelConfirmation.token_hash == token_hash)
            .returning(ChannelConfirmation)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def drop_confirmation(self, channel_id: uuid.UUID) -> None:
        await self.session.execute(delete(ChannelConfirmation).where(ChannelConfirmation.channel_id == channel_id))
