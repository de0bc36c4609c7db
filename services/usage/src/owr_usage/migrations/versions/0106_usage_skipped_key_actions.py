"""A key action `skipped`: a rule's disable that came while the key was disabled or being disabled, kept so that
its cause never disables the key later (after a user's enable)."""

from alembic import op

revision: str = "0106_usage"
down_revision: str | None = "0105_usage"

BEFORE = ("pending", "running", "done", "failed")
AFTER = (*BEFORE, "skipped")


def _check(statuses: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_key_actions_status"), "key_actions", schema="usage", type_="check")
    op.create_check_constraint(op.f("ck_key_actions_status"), "key_actions", f"status IN {statuses!r}", schema="usage")


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM usage.key_actions WHERE status = 'skipped'")
    _check(BEFORE)
