"""Snapshots and the daily spend derived from them; account balances, key lists and activity.

Money is unconstrained NUMERIC (exact), times are timestamptz, days are UTC dates. Key ids are the keys
service's: no foreign keys across services. See services/usage/README.md for the tables' meaning.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0002_usage"
down_revision: str | None = "0001_usage"


def _usage_columns() -> list[sa.Column[object]]:
    """OpenRouter's lifetime and window spend, with and without BYOK, as `/key` and `/keys` report it."""
    return [
        sa.Column(f"{prefix}{window}", sa.Numeric(), nullable=False)
        for prefix in ("usage", "byok_usage")
        for window in ("", "_daily", "_weekly", "_monthly")
    ]


def upgrade() -> None:
    op.create_table(
        "account_balances",
        sa.Column("management_key_id", sa.Uuid(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("total_credits", sa.Numeric(), nullable=False),
        sa.Column("total_usage", sa.Numeric(), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("management_key_id", "observed_at", name=op.f("pk_account_balances")),
        schema="usage",
    )
    op.create_index(
        "ix_account_balances_workspace_id", "account_balances", ["workspace_id"], unique=False, schema="usage"
    )
    op.create_table(
        "account_keys",
        sa.Column("management_key_id", sa.Uuid(), nullable=False),
        sa.Column("hash", sa.String(length=256), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("limit", sa.Numeric(), nullable=True),
        sa.Column("limit_remaining", sa.Numeric(), nullable=True),
        sa.Column("limit_reset", sa.String(length=64), nullable=True),
        sa.Column("include_byok_in_limit", sa.Boolean(), nullable=False),
        *_usage_columns(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("management_key_id", "hash", name=op.f("pk_account_keys")),
        schema="usage",
    )
    op.create_index(
        "ix_account_keys_workspace_label", "account_keys", ["workspace_id", "label"], unique=False, schema="usage"
    )
    op.create_table(
        "accounts",
        sa.Column("management_key_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("keys_observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("management_key_id", name=op.f("pk_accounts")),
        schema="usage",
    )
    op.create_index("ix_accounts_workspace_id", "accounts", ["workspace_id"], unique=False, schema="usage")
    op.create_table(
        "activity",
        sa.Column("management_key_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_hash", sa.String(length=256), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("model_permaslug", sa.String(length=300), nullable=True),
        sa.Column("endpoint_id", sa.String(length=300), nullable=True),
        sa.Column("provider_name", sa.String(length=300), nullable=True),
        sa.Column("usage", sa.Numeric(), nullable=False),
        sa.Column("byok_usage_inference", sa.Numeric(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("management_key_id", "api_key_hash", "date", "row_no", name=op.f("pk_activity")),
        schema="usage",
    )
    op.create_index("ix_activity_workspace_date", "activity", ["workspace_id", "date"], unique=False, schema="usage")
    op.create_table(
        "activity_days",
        sa.Column("management_key_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_hash", sa.String(length=256), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("management_key_id", "api_key_hash", "date", name=op.f("pk_activity_days")),
        schema="usage",
    )
    op.create_index(
        "ix_activity_days_workspace_date", "activity_days", ["workspace_id", "date"], unique=False, schema="usage"
    )
    op.create_table(
        "key_days",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("start_usage", sa.Numeric(), nullable=False),
        sa.Column("start_byok_usage", sa.Numeric(), nullable=False),
        sa.Column("spend", sa.Numeric(), nullable=False),
        sa.Column("byok_spend", sa.Numeric(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "day", name=op.f("pk_key_days")),
        schema="usage",
    )
    op.create_table(
        "key_states",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("latest_observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_states")),
        schema="usage",
    )
    op.create_index("ix_key_states_workspace_id", "key_states", ["workspace_id"], unique=False, schema="usage")
    op.create_table(
        "snapshots",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("is_management_key", sa.Boolean(), nullable=False),
        sa.Column("limit", sa.Numeric(), nullable=True),
        sa.Column("limit_reset", sa.String(length=64), nullable=True),
        sa.Column("limit_remaining", sa.Numeric(), nullable=True),
        sa.Column("include_byok_in_limit", sa.Boolean(), nullable=False),
        *_usage_columns(),
        sa.Column("is_free_tier", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "observed_at", name=op.f("pk_snapshots")),
        schema="usage",
    )


def downgrade() -> None:
    op.drop_table("snapshots", schema="usage")
    op.drop_index("ix_key_states_workspace_id", table_name="key_states", schema="usage")
    op.drop_table("key_states", schema="usage")
    op.drop_table("key_days", schema="usage")
    op.drop_index("ix_activity_days_workspace_date", table_name="activity_days", schema="usage")
    op.drop_table("activity_days", schema="usage")
    op.drop_index("ix_activity_workspace_date", table_name="activity", schema="usage")
    op.drop_table("activity", schema="usage")
    op.drop_index("ix_accounts_workspace_id", table_name="accounts", schema="usage")
    op.drop_table("accounts", schema="usage")
    op.drop_index("ix_account_keys_workspace_label", table_name="account_keys", schema="usage")
    op.drop_table("account_keys", schema="usage")
    op.drop_index("ix_account_balances_workspace_id", table_name="account_balances", schema="usage")
    op.drop_table("account_balances", schema="usage")
