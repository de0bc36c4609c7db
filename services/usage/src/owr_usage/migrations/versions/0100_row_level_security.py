"""Row-level security on the workspace-owned tables: a second wall behind every query's workspace filter
(`owr_shared.wall`; docs/decisions.md). Forced, so the schema's owner is held too.
"""

from alembic import op

from owr_shared.wall import install_statements, remove_statements

revision: str = "0100_usage"
down_revision: str | None = "0007_usage"

TABLES = (
    "snapshots",
    "key_states",
    "key_days",
    "key_links",
    "daily_usage",
    "daily_key_totals",
    "daily_model_totals",
    "monthly_key_totals",
    "accounts",
    "account_balances",
    "account_keys",
    "activity",
    "activity_days",
    "erased_workspaces",
)


def upgrade() -> None:
    for statement in install_statements("usage", TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_statements("usage", TABLES):
        op.execute(statement)
