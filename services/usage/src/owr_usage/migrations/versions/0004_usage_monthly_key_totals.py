"""Monthly key totals: a year's summary by key reads 12 rows per key instead of 365 (measured: the group
by key over 73,000 key days alone took 26-40 ms on the 2-core bench machine). The key days' primary key
becomes (workspace, day, key), so the days at a range's ends are read for every key by one range scan.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0004_usage"
down_revision: str | None = "0003_usage"


def upgrade() -> None:
    op.drop_constraint("pk_daily_key_totals", "daily_key_totals", schema="usage", type_="primary")
    op.create_primary_key("pk_daily_key_totals", "daily_key_totals", ["workspace_id", "day", "key_id"], schema="usage")
    op.create_table(
        "monthly_key_totals",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("cost", sa.Numeric(), nullable=False),
        sa.Column("byok_cost", sa.Numeric(), nullable=False),
        sa.Column("cost_without_breakdown", sa.Numeric(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("breakdown_rows", sa.Integer(), nullable=False),
        sa.Column("provisional_rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key_id", "month", name=op.f("pk_monthly_key_totals")),
        schema="usage",
    )
    op.execute(
        """
        INSERT INTO usage.monthly_key_totals
        SELECT workspace_id, key_id, date_trunc('month', day)::date,
               sum(cost), sum(byok_cost), COALESCE(sum(cost) FILTER (WHERE model = ''), 0),
               COALESCE(sum(requests), 0), COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0),
               COALESCE(sum(reasoning_tokens), 0), count(*), count(*) FILTER (WHERE model <> ''),
               count(*) FILTER (WHERE provisional)
        FROM usage.daily_usage
        GROUP BY workspace_id, key_id, date_trunc('month', day)::date
        """
    )


def downgrade() -> None:
    op.drop_table("monthly_key_totals", schema="usage")
    op.drop_constraint("pk_daily_key_totals", "daily_key_totals", schema="usage", type_="primary")
    op.create_primary_key("pk_daily_key_totals", "daily_key_totals", ["workspace_id", "key_id", "day"], schema="usage")
