"""Double opt-in for email channels: `alert_channels.email_confirmed_at` and `usage.channel_confirmations` (the
hashed one-time token of an address's confirmation link). Email channels that exist already count as confirmed,
so no existing alert stops (docs/decisions.md)."""

import sqlalchemy as sa
from alembic import op

from owr_shared.wall import install_statements, remove_statements

revision: str = "0108_usage"
down_revision: str | None = "0107_usage"

TABLES = ("channel_confirmations",)


def upgrade() -> None:
    op.add_column(
        "alert_channels", sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True), schema="usage"
    )
    op.execute("UPDATE usage.alert_channels SET email_confirmed_at = created_at WHERE type = 'email'")
    op.create_table(
        "channel_confirmations",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["usage.alert_channels.id"],
            name=op.f("fk_channel_confirmations_channel_id_alert_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_confirmations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_channel_confirmations_token_hash")),
        schema="usage",
    )
    for statement in install_statements("usage", TABLES):
        op.execute(statement)


def downgrade() -> None:
    # The older code knows no `channel.confirmation` event (its type check refuses it), and without the column an
    # unconfirmed address would receive every alert: drop those events (their deliveries go with them) and
    # disable the channels still waiting, saying why.
    op.execute("DELETE FROM usage.alert_events WHERE type = 'channel.confirmation'")
    op.execute(
        "UPDATE usage.alert_channels SET disabled_at = now(),"
        " disabled_reason = 'its address was never confirmed (a downgrade removed the confirmation step)'"
        " WHERE type = 'email' AND email_confirmed_at IS NULL AND disabled_at IS NULL"
    )
    for statement in remove_statements("usage", TABLES):
        op.execute(statement)
    op.drop_table("channel_confirmations", schema="usage")
    op.drop_column("alert_channels", "email_confirmed_at", schema="usage")
