"""A set_limit key action's `include_byok_in_limit` (null: not sent, OpenRouter keeps the key's setting)."""

import sqlalchemy as sa
from alembic import op

revision: str = "0107_usage"
down_revision: str | None = "0106_usage"


def upgrade() -> None:
    op.add_column("key_actions", sa.Column("include_byok_in_limit", sa.Boolean(), nullable=True), schema="usage")


def downgrade() -> None:
    op.drop_column("key_actions", "include_byok_in_limit", schema="usage")
