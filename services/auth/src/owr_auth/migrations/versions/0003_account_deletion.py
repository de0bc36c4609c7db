"""Account deletion in two steps: the account and its workspaces are marked first (nobody can use them
from then on), and their rows go once every other service has erased their data."""

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True), schema="auth")
    op.add_column("workspaces", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True), schema="auth")
    op.create_index(
        "ix_workspaces_deleted_at",
        "workspaces",
        ["deleted_at"],
        unique=False,
        schema="auth",
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_workspaces_deleted_at", table_name="workspaces", schema="auth")
    op.drop_column("workspaces", "deleted_at", schema="auth")
    op.drop_column("users", "deleted_at", schema="auth")
