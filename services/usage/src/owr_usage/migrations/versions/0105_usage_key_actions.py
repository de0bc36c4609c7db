"""Key actions (issue 17): writes to OpenRouter that the worker carries out (disable, enable, set a limit), the
budgets' kill switch, and a key's anomaly threshold. Workspace-owned, behind the row-level security wall."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from owr_shared.wall import install_statements, remove_statements

revision: str = "0105_usage"
down_revision: str | None = "0104_usage"

TABLES = ("key_actions", "key_kill_switches")


def upgrade() -> None:
    op.add_column(
        "budgets",
        sa.Column("disable_key_on_exceed", sa.Boolean(), server_default="false", nullable=False),
        schema="usage",
    )
    op.create_table(
        "key_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("limit_usd", sa.Numeric(), nullable=True),
        sa.Column("limit_reset", sa.String(16), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("budget_id", sa.Uuid(), nullable=True),
        sa.Column("evidence", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('disable', 'enable', 'set_limit')", name=op.f("ck_key_actions_kind")),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_key_actions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_actions")),
        sa.UniqueConstraint("workspace_id", "dedup_key", name="uq_key_actions_workspace_dedup"),
        schema="usage",
    )
    op.create_index(
        "ix_key_actions_workspace_key", "key_actions", ["workspace_id", "key_id", "created_at"], schema="usage"
    )
    op.create_index(
        "ix_key_actions_open",
        "key_actions",
        ["created_at"],
        schema="usage",
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.create_table(
        "key_kill_switches",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("anomaly_score", sa.Numeric(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_kill_switches")),
        schema="usage",
    )
    op.create_index("ix_key_kill_switches_workspace", "key_kill_switches", ["workspace_id"], schema="usage")
    for statement in install_statements("usage", TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_statements("usage", TABLES):
        op.execute(statement)
    for table in reversed(TABLES):
        op.drop_table(table, schema="usage")
    op.drop_column("budgets", "disable_key_on_exceed", schema="usage")
