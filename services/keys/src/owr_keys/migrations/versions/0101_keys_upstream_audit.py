"""Audit actions of the writes made at OpenRouter on a key (issue 17): disabled, enabled, limit set."""

from alembic import op

revision: str = "0101_keys"
down_revision: str | None = "0100_keys"

BEFORE = ("created", "renamed", "activated", "deactivated", "deleted", "sync_requested", "revealed", "status_reported")
AFTER = (*BEFORE, "upstream_disabled", "upstream_enabled", "upstream_limit_set")


def _check(actions: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_audit_events_action"), "audit_events", schema="keys", type_="check")
    op.create_check_constraint(op.f("ck_audit_events_action"), "audit_events", f"action IN {actions!r}", schema="keys")


def upgrade() -> None:
    _check(AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM keys.audit_events WHERE action LIKE 'upstream_%'")
    _check(BEFORE)
