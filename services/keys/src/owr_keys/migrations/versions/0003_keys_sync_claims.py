"""The due scan's lease on a key (`sync_claimed_until`): scans of several worker processes page through
the due keys at once, and none takes a key another scan already took.
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0003_keys"
down_revision: str | None = "0002_keys"


def upgrade() -> None:
    op.add_column(
        "openrouter_keys", sa.Column("sync_claimed_until", sa.DateTime(timezone=True), nullable=True), schema="keys"
    )


def downgrade() -> None:
    op.drop_column("openrouter_keys", "sync_claimed_until", schema="keys")
