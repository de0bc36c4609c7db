"""Channels (issue 15): a channel's audit by workspace, so a workspace's erasure deletes it along an index."""

from alembic import op

revision: str = "0102_usage"
down_revision: str | None = "0101_usage"


def upgrade() -> None:
    op.create_index("ix_channel_audit_workspace_at", "channel_audit", ["workspace_id", "at"], schema="usage")


def downgrade() -> None:
    op.drop_index("ix_channel_audit_workspace_at", table_name="channel_audit", schema="usage")
