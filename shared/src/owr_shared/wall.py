"""Row-level security, the second wall: each transaction says whose rows it may touch, PostgreSQL enforces it.

Every workspace-owned table of keys and usage has a policy (their migration `0100_row_level_security`)
admitting a row when its `workspace_id` is the transaction's `owr.workspace_id`, or any row when the
transaction's `owr.spans` is `on`. A transaction that set neither sees no row and may write none.

A request's wall comes from its verified caller (`owr_shared.auth`): a user's token names one workspace, a
service token (only `/internal/...` routes accept one) spans. Commands pass `SPANS` to
`owr_shared.db.transaction`; migrations span on their connection (`owr_shared.migrate`).

Superusers bypass row-level security, even when it is forced, so a superuser login's transaction (tests, the
dev stack) takes the NOLOGIN role `owr_wall` for its duration. Service logins that own their schema
(compose, Kubernetes) are held by FORCE ROW LEVEL SECURITY and keep their own role.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

ROLE = "owr_wall"
WORKSPACE_SETTING = "owr.workspace_id"
SPANS_SETTING = "owr.spans"


@dataclass(frozen=True, slots=True)
class Wall:
    """Whose rows a transaction may touch: one workspace's, every workspace's (`spans`), or none."""

    workspace_id: uuid.UUID | None = None
    spans: bool = False


DENY = Wall()
SPANS = Wall(spans=True)

WallSource = Wall | Callable[[], Wall]

# One statement, so one round trip at the start of each transaction. The role switch is decided by the
# server, for the role current at that moment; set_config is volatile, so CASE evaluates it only when true.
# asyncpg's placeholders: it runs on the DB-API cursor (below).
_ENTER = (
    f"SELECT set_config('{WORKSPACE_SETTING}', $1, true), set_config('{SPANS_SETTING}', $2, true),"
    f" CASE WHEN current_setting('is_superuser') = 'on' THEN set_config('role', '{ROLE}', true) END"
)


def _parameters(wall: Wall) -> tuple[str, str]:
    return str(wall.workspace_id or ""), "on" if wall.spans else ""


def _enter(connection: Connection, wall: Wall) -> None:
    # The DB-API cursor rather than `connection.execute`: a third of the client's CPU per transaction
    # (measured 40-60 us against 100-200 us), which every request pays.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_ENTER, _parameters(wall))
    finally:
        cursor.close()


async def enter(connection: AsyncConnection, wall: Wall) -> None:
    """Put the transaction open on `connection` behind `wall` (a connection outside any session: exports)."""
    await connection.run_sync(_enter, wall)


# --- requests -----------------------------------------------------------------------------------------

_REQUEST_STATE = "owr_wall"


def declare(request: Request, wall: Wall) -> None:
    """Record the wall of the request's caller; a request acts for one caller only."""
    current = getattr(request.state, _REQUEST_STATE, None)
    if current is not None and current != wall:
        raise RuntimeError("a request declared two different walls")
    setattr(request.state, _REQUEST_STATE, wall)


def declared(request: Request) -> Wall:
    """The wall the request's caller declared; DENY when no caller dependency ran."""
    wall: Wall = getattr(request.state, _REQUEST_STATE, DENY)
    return wall


# --- sessions -----------------------------------------------------------------------------------------

_SESSION_INFO = "owr_wall"


class WalledSession(Session):
    """A session whose every transaction starts behind the wall `guard` gave it (DENY when none)."""


def guard(session: AsyncSession, wall: WallSource) -> None:
    """Give `session` its wall; a callable is asked when a transaction begins (a request's caller is known by
    then, whatever order its dependencies were solved in)."""
    session.info[_SESSION_INFO] = wall


def of(session: AsyncSession | Session) -> Wall:
    """The wall `session`'s transactions start behind."""
    source: WallSource = session.info.get(_SESSION_INFO, DENY)
    return source if isinstance(source, Wall) else source()


@event.listens_for(WalledSession, "after_begin")
def _after_begin(session: Session, _transaction: SessionTransaction, connection: Connection) -> Any:
    # Also fires for a session joining an outer transaction through a savepoint (the tests' isolation rule):
    # SET LOCAL then lasts until that savepoint is rolled back, or past its release to the outer end.
    _enter(connection, of(session))


# --- the database side (migrations) ---------------------------------------------------------------------

# Initplans: each setting is read once per statement, not once per row.
POLICY = (
    f"(SELECT current_setting('{SPANS_SETTING}', true) = 'on')"
    f" OR workspace_id = (SELECT nullif(current_setting('{WORKSPACE_SETTING}', true), '')::uuid)"
)
POLICY_NAME = "workspace_wall"


def install_statements(schema: str, tables: Sequence[str]) -> list[str]:
    """DDL putting `tables` of `schema` behind the wall, and `ROLE` where a superuser login can take it.

    Roles are the cluster's, not the database's: `ROLE` is created once, by whichever migration runs first
    with the right to (a schema owner without CREATEROLE, as in compose, needs no such role).
    """
    privileges = "SELECT, INSERT, UPDATE, DELETE"
    statements = [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')
               AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
                CREATE ROLE {ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migration was first
        END $$""",  # noqa: S608 - the role's name is a constant
        f"""DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                GRANT USAGE ON SCHEMA "{schema}" TO {ROLE};
                GRANT {privileges} ON ALL TABLES IN SCHEMA "{schema}" TO {ROLE};
                GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT {privileges} ON TABLES TO {ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT USAGE, SELECT ON SEQUENCES TO {ROLE};
            END IF;
        END $$""",
    ]
    for table in tables:
        name = f'"{schema}"."{table}"'
        statements += [
            f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
            # Owners (the service's login in compose and Kubernetes) are held too.
            f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {POLICY_NAME} ON {name} USING ({POLICY}) WITH CHECK ({POLICY})",
        ]
    return statements


def remove_statements(schema: str, tables: Sequence[str]) -> list[str]:
    """The reverse of `install_statements`, except that `ROLE` stays: other databases may still use it."""
    statements: list[str] = []
    for table in tables:
        name = f'"{schema}"."{table}"'
        statements += [
            f"DROP POLICY IF EXISTS {POLICY_NAME} ON {name}",
            f"ALTER TABLE {name} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY",
        ]
    statements.append(
        f"""DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" REVOKE ALL ON TABLES FROM {ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" REVOKE ALL ON SEQUENCES FROM {ROLE};
                REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {ROLE};
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA "{schema}" FROM {ROLE};
                REVOKE ALL ON SCHEMA "{schema}" FROM {ROLE};
            END IF;
        END $$"""  # noqa: S608 - the schema's name is a migration's constant
    )
    return statements


def span_migrations(connection: Connection) -> None:
    """Let a migration's connection reach every workspace's rows (a data migration run by the owner)."""
    connection.execute(text(f"SELECT set_config('{SPANS_SETTING}', 'on', false)"))
