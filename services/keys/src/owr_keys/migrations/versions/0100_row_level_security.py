"""Row-level security on the workspace-owned tables: a second wall behind every query's workspace filter
(`owr_shared.wall`; docs/decisions.md). Forced, so the schema's owner is held too.
"""

from alembic import op

from owr_shared.wall import install_statements, remove_statements

revision: str = "0100_keys"
down_revision: str | None = "0004_keys"

TABLES = ("openrouter_keys", "audit_events", "erased_workspaces")


def upgrade() -> None:
    for statement in install_statements("keys", TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_statements("keys", TABLES):
        op.execute(statement)
