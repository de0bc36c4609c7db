"""Anomalies per key (issue 17): `key_anomalies`, one row per (workspace, key, day, kind), behind the row-level
security wall in this revision like every workspace-owned table."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from owr_shared.wall import install_statements, remove_statements

revision: str = "0104_usage"
down_revision: str | None = "0102_usage"

TABLES = ("key_anomalies",)


def upgrade() -> None:
    op.create_table(
        "key_anomalies",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key_id", "day", "kind", name=op.f("pk_key_anomalies")),
        schema="usage",
    )
    op.create_index("ix_key_anomalies_workspace_day", "key_anomalies", ["workspace_id", "day"], schema="usage")
    for statement in install_statements("usage", TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_statements("usage", TABLES):
        op.execute(statement)
    op.drop_table("key_anomalies", schema="usage")
