"""Create the keys schema (env.py creates it; this revision anchors the history)."""

revision: str = "0001_keys"
down_revision: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
