"""What every repository shares: a page with its total, a counted DELETE, a workspace's rows table by table, and
its erasure."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import Delete, Row, Select, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

# A statement or a row of any columns (SQLAlchemy types them by their columns).
AnySelect = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]


async def page_rows(session: AsyncSession, query: AnySelect, *, offset: int, limit: int) -> tuple[list[AnyRow], int]:
    """The ordered `query`'s rows in [offset, offset + limit) and how many it has in all: one round trip (a
    window count beside each row), a second only when the page is past the end. Each row ends with `total`."""
    rows = list(
        (await session.execute(query.add_columns(func.count().over().label("total")).offset(offset).limit(limit))).all()
    )
    if rows:
        return rows, int(rows[0].total)
    if offset == 0:
        return [], 0
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return [], int(total or 0)


async def deleted_rows(session: AsyncSession, statement: Delete) -> int:
    """Run a DELETE; how many rows it removed."""
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_workspace_rows(
    session: AsyncSession, workspace_id: uuid.UUID, models: Iterable[Any]
) -> dict[str, int]:
    """Delete the workspace's rows of each model (each has a `workspace_id` column), in the order given;
    the rows removed by table name."""
    return {
        model.__tablename__: await deleted_rows(session, delete(model).where(model.workspace_id == workspace_id))
        for model in models
    }


# --- a workspace's erasure, and the writers that must not outlive it ---------------------------------
#
# Each service that stores rows per workspace keeps a tombstone per erased workspace (a table with the
# `WorkspaceTombstoneColumns`). A writer shares the workspace's erasure lock until it commits and skips
# an erased workspace; the erasure holds that lock alone while it writes the tombstone and deletes. So a
# write that started before the erasure finishes before the delete (and is deleted with the rest), and a
# write that starts after it finds the tombstone: nothing re-creates a workspace's rows behind it.

_SHARE_ERASURE_LOCKS = text(
    """
SELECT count(pg_advisory_xact_lock_shared(lock_id)) FROM (
    SELECT DISTINCT hashtextextended('owr.erasure:' || w::text, 0) AS lock_id
    FROM unnest(CAST(:workspace_ids AS uuid[])) AS w
    ORDER BY lock_id
) ordered
"""
)
_HOLD_ERASURE_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('owr.erasure:' || CAST(:workspace_id AS uuid)::text, 0))"
)


async def erased_among(session: AsyncSession, tombstones: Any, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Share the workspaces' erasure locks until the transaction ends; the ones already erased."""
    wanted = sorted(set(workspace_ids))
    if not wanted:
        return set()
    await session.execute(_SHARE_ERASURE_LOCKS, {"workspace_ids": wanted})
    result = await session.execute(select(tombstones.workspace_id).where(tombstones.workspace_id.in_(wanted)))
    return set(result.scalars().all())


async def tombstone_workspace(session: AsyncSession, tombstones: Any, workspace_id: uuid.UUID) -> None:
    """Hold the workspace's erasure lock alone until the transaction ends, and record it as erased."""
    await session.execute(_HOLD_ERASURE_LOCK, {"workspace_id": workspace_id})
    await session.execute(
        pg_insert(tombstones).values(workspace_id=workspace_id).on_conflict_do_nothing(index_elements=["workspace_id"])
    )


async def stored_workspace_ids(
    session: AsyncSession, columns: Iterable[Any], *, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """The first `limit` distinct workspace ids above `after` in any of `columns` (each the leading column
    of an index): a page of the orphan sweep. A loose index scan, one index descent per distinct id."""
    found: set[uuid.UUID] = set()
    for column in columns:
        table, name = column.table.fullname, column.name
        # The identifiers are the models' own table and column names, never input.
        skip_scan = text(
            f"""
WITH RECURSIVE ids(w) AS (
    (SELECT {name} FROM {table} WHERE {name} > CAST(:after AS uuid) ORDER BY {name} LIMIT 1)
    UNION ALL
    SELECT (SELECT {name} FROM {table} WHERE {name} > ids.w ORDER BY {name} LIMIT 1) FROM ids WHERE ids.w IS NOT NULL
)
SELECT w FROM ids WHERE w IS NOT NULL LIMIT :limit
"""  # noqa: S608
        )
        result = await session.execute(skip_scan, {"after": after or uuid.UUID(int=0), "limit": limit})
        found.update(result.scalars().all())
    return sorted(found)[:limit]


class TombstoneRepository:
    """A service's erased workspaces: its tombstone model, and the columns that tell which workspaces hold
    rows there (each the leading column of an index). Callers own the transaction."""

    tombstones: ClassVar[Any]
    holders: ClassVar[tuple[Any, ...]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erased_among(self, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return await erased_among(self.session, self.tombstones, workspace_ids)

    async def tombstone(self, workspace_id: uuid.UUID) -> None:
        await tombstone_workspace(self.session, self.tombstones, workspace_id)

    async def stored_workspaces(self, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        return await stored_workspace_ids(self.session, self.holders, after=after, limit=limit)
