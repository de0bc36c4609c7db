"""Budgets, channels and alerts (issue 15): the outbox of events and its deliveries, the built-in rules'
switches and tracked conditions, the channels with their sealed targets and secrets, and the budgets.
Every table is workspace-owned and goes behind the row-level security wall in this revision.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from owr_shared.wall import install_statements, remove_statements

revision: str = "0101_usage"
down_revision: str | None = "0100_usage"

TABLES = (
    "alert_channels",
    "channel_secrets",
    "channel_audit",
    "alert_events",
    "alert_deliveries",
    "alert_delivery_attempts",
    "alert_rules",
    "alert_conditions",
    "budgets",
)


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _created(name: str = "created_at") -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target_hint", sa.String(300), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(40)), nullable=True),
        _at("disabled_at", nullable=True),
        sa.Column("disabled_reason", sa.String(300), nullable=True),
        _at("failing_since", nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        _created(),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_channels")),
        schema="usage",
    )
    op.create_index(
        "ix_alert_channels_workspace_created",
        "alert_channels",
        ["workspace_id", "created_at", "id"],
        schema="usage",
    )
    op.create_table(
        "channel_secrets",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=False),
        sa.Column("dek_nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("kek_version", sa.String(32), nullable=False),
        _at("expires_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["usage.alert_channels.id"],
            name=op.f("fk_channel_secrets_channel_id_alert_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "kind", name=op.f("pk_channel_secrets")),
        schema="usage",
    )
    op.create_table(
        "channel_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        _created("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_audit")),
        schema="usage",
    )
    op.create_index("ix_channel_audit_channel_at", "channel_audit", ["channel_id", "at"], schema="usage")
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("dedup_key", sa.String(300), nullable=True),
        _at("occurred_at"),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("workspace_id", "dedup_key", name=op.f("uq_alert_events_workspace_id")),
        schema="usage",
    )
    op.create_index(
        "ix_alert_events_workspace_at", "alert_events", ["workspace_id", "occurred_at", "id"], schema="usage"
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at", nullable=True),
        _at("lease_until", nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        _at("delivered_at", nullable=True),
        _created(),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["usage.alert_events.id"],
            name=op.f("fk_alert_deliveries_event_id_alert_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["usage.alert_channels.id"],
            name=op.f("fk_alert_deliveries_channel_id_alert_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("event_id", "channel_id", name=op.f("uq_alert_deliveries_event_id")),
        schema="usage",
    )
    op.create_index(
        "ix_alert_deliveries_due",
        "alert_deliveries",
        ["next_attempt_at"],
        schema="usage",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_alert_deliveries_channel", "alert_deliveries", ["channel_id", "created_at"], schema="usage")
    op.create_table(
        "alert_delivery_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _at("at"),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        _at("next_attempt_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["usage.alert_deliveries.id"],
            name=op.f("fk_alert_delivery_attempts_delivery_id_alert_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_delivery_attempts")),
        schema="usage",
    )
    op.create_index(
        "ix_alert_delivery_attempts_channel_at",
        "alert_delivery_attempts",
        ["channel_id", "at", "id"],
        schema="usage",
    )
    op.create_index(
        op.f("ix_usage_alert_delivery_attempts_delivery_id"), "alert_delivery_attempts", ["delivery_id"], schema="usage"
    )
    op.create_table(
        "alert_rules",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("workspace_id", "rule", name=op.f("pk_alert_rules")),
        schema="usage",
    )
    op.create_table(
        "alert_conditions",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(120), nullable=False),
        _at("since"),
        _at("fired_at", nullable=True),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "rule", "subject", name=op.f("pk_alert_conditions")),
        schema="usage",
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scope_type", sa.String(16), nullable=False),
        sa.Column("scope_id", sa.Uuid(), nullable=True),
        sa.Column("amount_usd", sa.Numeric(), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("thresholds", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("include_byok", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("channel_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
        _created(),
        _created("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        schema="usage",
    )
    op.create_index("ix_budgets_workspace_created", "budgets", ["workspace_id", "created_at", "id"], schema="usage")
    op.create_index("ix_budgets_scope", "budgets", ["scope_id"], schema="usage")
    for statement in install_statements("usage", TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in remove_statements("usage", TABLES):
        op.execute(statement)
    for table in reversed(TABLES):
        op.drop_table(table, schema="usage")
