"""Probes of the row-level security wall (`owr_shared.wall`): routes that forget their workspace filter on
purpose, added to a service's real app, and what the database says about its tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from owr_shared.auth import User, require_scope
from owr_shared.db import DbSession
from owr_shared.jwt import Principal
from owr_shared.wall import POLICY_NAME
from tests.support.apps import rolled_back_client


async def _workspaces(session: AsyncSession, model: Any) -> list[str]:
    """Every workspace `model`'s table shows this transaction: no workspace filter, deliberately."""
    return sorted({str(w) for w in await session.scalars(select(model.workspace_id))})


@asynccontextmanager
async def probe_client(
    app: FastAPI, model: Any, service_scope: str, connection: AsyncConnection
) -> AsyncIterator[httpx.AsyncClient]:
    """A rolled-back client of `app` (lifespan not yet run) with `probe_router(model, service_scope)` added."""
    app.include_router(probe_router(model, service_scope))
    async with app.router.lifespan_context(app), rolled_back_client(app, connection) as client:
        yield client


def probe_router(model: Any, service_scope: str) -> APIRouter:
    """`GET /probe/user` (a user's token), `/probe/service` (a service token with `service_scope`) and
    `/probe/nobody` (no caller): the workspaces an unfiltered read of `model` returns to each."""
    router = APIRouter(prefix="/probe")
    service = Depends(require_scope(service_scope))

    @router.get("/user")
    async def as_user(_: User, session: DbSession) -> list[str]:
        return await _workspaces(session, model)

    @router.get("/service")
    async def as_service(session: DbSession, _: Principal = service) -> list[str]:
        return await _workspaces(session, model)

    @router.get("/nobody")
    async def as_nobody(session: DbSession) -> list[str]:
        return await _workspaces(session, model)

    return router


async def walls_of(connection: AsyncConnection, metadata: MetaData) -> dict[str, tuple[bool, bool, bool]]:
    """Per table of `metadata` with a `workspace_id` column: (row security enabled, forced, policy present)."""
    owned = {table.name for table in metadata.tables.values() if "workspace_id" in table.columns}
    rows = await connection.execute(
        text(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = :policy)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relname = ANY(:tables)"
        ),
        {"policy": POLICY_NAME, "schema": metadata.schema, "tables": sorted(owned)},
    )
    found = {name: (enabled, forced, policy) for name, enabled, forced, policy in rows.all()}
    return {name: found.get(name, (False, False, False)) for name in owned}
