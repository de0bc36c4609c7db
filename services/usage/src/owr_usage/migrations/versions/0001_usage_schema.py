"""Create the usage schema (env.py creates it; this revision anchors the history)."""

revision: str = "0001_usage"
down_revision: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
