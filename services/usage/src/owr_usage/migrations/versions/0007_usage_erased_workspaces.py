"""Tombstones of erased workspaces: a sync that reports after an account's deletion stores nothing."""

import sqlalchemy as sa
from alembic import op

revision: str = "0007_usage"
down_revision: str | None = "0006_usage"


def upgrade() -> None:
    op.create_table(
        "erased_workspaces",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_erased_workspaces")),
        schema="usage",
    )


def downgrade() -> None:
    op.drop_table("erased_workspaces", schema="usage")
