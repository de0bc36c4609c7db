"""Tombstones of erased workspaces: a write that races an account's deletion finds one and stores nothing."""

import sqlalchemy as sa
from alembic import op

revision: str = "0004_keys"
down_revision: str | None = "0003_keys"


def upgrade() -> None:
    op.create_table(
        "erased_workspaces",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_erased_workspaces")),
        schema="keys",
    )


def downgrade() -> None:
    op.drop_table("erased_workspaces", schema="keys")
