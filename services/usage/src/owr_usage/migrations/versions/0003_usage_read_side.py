"""The read side: stored key links, daily rows per (workspace, day, key, model, provider), exact rollups.

Existing figures are carried over once here (links, daily rows and rollups built from the stored
snapshots' days and activity); from then on every ingestion keeps them up to date incrementally.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003_usage"
down_revision: str | None = "0002_usage"

_MONEY_AND_COUNTS = ("cost", "byok_cost", "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens")


def _totals_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("cost", sa.Numeric(), nullable=False),
        sa.Column("byok_cost", sa.Numeric(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "key_links",
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=True),
        sa.Column("is_management_key", sa.Boolean(), nullable=False),
        sa.Column("management_key_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_hash", sa.String(length=256), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_links")),
        schema="usage",
    )
    op.create_index("ix_key_links_workspace_label", "key_links", ["workspace_id", "label"], schema="usage")
    op.create_index("ix_key_links_account_hash", "key_links", ["management_key_id", "api_key_hash"], schema="usage")
    op.create_table(
        "daily_usage",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=300), nullable=False),
        sa.Column("cost", sa.Numeric(), nullable=False),
        sa.Column("byok_cost", sa.Numeric(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=True),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=True),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", "key_id", "model", "provider", name=op.f("pk_daily_usage")),
        schema="usage",
    )
    op.create_index("ix_daily_usage_key_day", "daily_usage", ["key_id", "day"], schema="usage")
    op.create_table(
        "daily_key_totals",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_totals_columns(),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("breakdown", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key_id", "day", name=op.f("pk_daily_key_totals")),
        schema="usage",
    )
    op.create_table(
        "daily_model_totals",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=300), nullable=False),
        *_totals_columns(),
        sa.Column("provisional_rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "day", "model", "provider", name=op.f("pk_daily_model_totals")),
        schema="usage",
    )
    _backfill()


def _backfill() -> None:
    # Links from each key's latest snapshot and the stored key lists (the rule of owr_usage.rollups).
    op.execute(
        """
        INSERT INTO usage.key_links (key_id, workspace_id, label, is_management_key, management_key_id, api_key_hash)
        SELECT ks.key_id, ks.workspace_id, s.label, s.is_management_key, m.management_key_id, m.hash
        FROM usage.key_states ks
        JOIN usage.snapshots s ON s.key_id = ks.key_id AND s.observed_at = ks.latest_observed_at
        LEFT JOIN LATERAL (
            SELECT ak.management_key_id, ak.hash FROM usage.account_keys ak
            WHERE ak.workspace_id = ks.workspace_id AND ak.label = s.label
            ORDER BY ak.observed_at DESC, ak.management_key_id LIMIT 1
        ) m ON NOT s.is_management_key AND s.label IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM usage.account_keys o
            WHERE o.workspace_id = ks.workspace_id AND o.label = s.label AND o.hash <> m.hash
        )
        """
    )
    # Daily rows: a linked key's fetched days from activity, every other day from key_days.
    op.execute(
        """
        INSERT INTO usage.daily_usage
        SELECT kl.workspace_id, a.date, kl.key_id, a.model, COALESCE(a.provider_name, ''),
               sum(a.usage), sum(a.byok_usage_inference), sum(a.requests), sum(a.prompt_tokens),
               sum(a.completion_tokens), sum(a.reasoning_tokens), false
        FROM usage.key_links kl
        JOIN usage.activity a ON a.management_key_id = kl.management_key_id AND a.api_key_hash = kl.api_key_hash
        GROUP BY kl.workspace_id, a.date, kl.key_id, a.model, COALESCE(a.provider_name, '')
        """
    )
    op.execute(
        """
        INSERT INTO usage.daily_usage
        SELECT kd.workspace_id, kd.day, kd.key_id, '', '', kd.spend, kd.byok_spend, NULL, NULL, NULL, NULL, NOT kd.final
        FROM usage.key_days kd
        WHERE NOT EXISTS (
            SELECT 1 FROM usage.key_links kl
            JOIN usage.activity_days ad
              ON ad.management_key_id = kl.management_key_id AND ad.api_key_hash = kl.api_key_hash
            WHERE kl.key_id = kd.key_id AND ad.date = kd.day
        )
        """
    )
    sums = ", ".join(
        f"COALESCE(sum({c}), 0)" if c not in ("cost", "byok_cost") else f"sum({c})" for c in _MONEY_AND_COUNTS
    )
    op.execute(
        f"""
        INSERT INTO usage.daily_key_totals
        SELECT workspace_id, key_id, day, {sums}, count(*), bool_or(provisional), bool_and(model <> '')
        FROM usage.daily_usage GROUP BY workspace_id, key_id, day
        """  # noqa: S608 - column names only
    )
    op.execute(
        f"""
        INSERT INTO usage.daily_model_totals
        SELECT workspace_id, day, model, provider, {sums}, count(*), count(*) FILTER (WHERE provisional)
        FROM usage.daily_usage GROUP BY workspace_id, day, model, provider
        """  # noqa: S608 - column names only
    )


def downgrade() -> None:
    op.drop_table("daily_model_totals", schema="usage")
    op.drop_table("daily_key_totals", schema="usage")
    op.drop_index("ix_daily_usage_key_day", table_name="daily_usage", schema="usage")
    op.drop_table("daily_usage", schema="usage")
    op.drop_index("ix_key_links_account_hash", table_name="key_links", schema="usage")
    op.drop_index("ix_key_links_workspace_label", table_name="key_links", schema="usage")
    op.drop_table("key_links", schema="usage")
