"""Deletions every repository shares: a counted DELETE, and a workspace's rows table by table."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Delete, delete
from sqlalchemy.ext.asyncio import AsyncSession


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
