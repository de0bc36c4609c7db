"""Migration `0108_usage` on a database holding channels made before it: existing email channels count as
confirmed (their alerts do not stop on a deploy), the other types have no confirmation, and it goes back down."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from owr_shared.db import asyncpg_url
from owr_shared.migrate import alembic_config
from tools.devinfra import create_database, drop_database


async def _run(url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


def test_existing_email_channels_count_as_confirmed(infra: dict[str, str]) -> None:
    name = f"owr_test_optin_{secrets.token_hex(4)}"
    url = create_database(infra["database_url"], name)
    try:
        config = alembic_config("usage", url)
        command.upgrade(config, "0107_usage")
        workspace = uuid.uuid4()
        mailbox, hook = uuid.uuid4(), uuid.uuid4()
        insert = (
            "INSERT INTO usage.alert_channels (id, workspace_id, type, name, target_hint, consecutive_failures,"
            " created_at) VALUES (:id, :ws, :type, 'n', 'h', 0, '2026-11-30T10:00:00Z')"
        )
        asyncio.run(_run(url, insert, id=mailbox, ws=workspace, type="email"))
        asyncio.run(_run(url, insert, id=hook, ws=workspace, type="webhook"))
        command.upgrade(config, "head")
        rows = asyncio.run(_run(url, "SELECT id, email_confirmed_at FROM usage.alert_channels"))
        confirmed = {row.id: row.email_confirmed_at for row in rows}
        assert confirmed[hook] is None
        assert confirmed[mailbox] is not None
        assert confirmed[mailbox].isoformat() == "2026-11-30T10:00:00+00:00"
        # A channel still waiting for its address, and its confirmation event, when the deploy is rolled back.
        waiting, event = uuid.uuid4(), uuid.uuid4()
        asyncio.run(_run(url, insert, id=waiting, ws=workspace, type="email"))
        asyncio.run(_run(url, "UPDATE usage.alert_channels SET email_confirmed_at = NULL WHERE id = :id", id=waiting))
        asyncio.run(
            _run(
                url,
                "INSERT INTO usage.alert_events (id, workspace_id, type, occurred_at, data)"
                " VALUES (:id, :ws, 'channel.confirmation', now(), '{}')",
                id=event,
                ws=workspace,
            )
        )
        command.downgrade(config, "0107_usage")
        # The older code refuses that event type, and would send every alert to the unconfirmed address.
        assert asyncio.run(_run(url, "SELECT id FROM usage.alert_events WHERE id = :id", id=event)) == []
        state = {
            row.id: row.disabled_at
            for row in asyncio.run(_run(url, "SELECT id, disabled_at FROM usage.alert_channels"))
        }
        assert state[waiting] is not None
        assert state[mailbox] is None
        columns = asyncio.run(
            _run(
                url,
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'usage' AND table_name = 'alert_channels'",
            )
        )
        assert "email_confirmed_at" not in {row.column_name for row in columns}
    finally:
        drop_database(infra["database_url"], name)
