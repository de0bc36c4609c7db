"""Security notices: five more kinds of outbound mail (two-factor sign-in on or off, new recovery codes, a
changed password, a sign-in from a new device). They carry no link to use, so they mint no token."""

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"

OLD_KINDS = ("verify_email", "password_reset", "invitation")
NOTICE_KINDS = ("mfa_enabled", "mfa_disabled", "recovery_codes_replaced", "password_changed", "new_sign_in")


def _kind_check(kinds: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    op.create_check_constraint(op.f("ck_outbound_mail_kind"), "outbound_mail", f"kind IN ({listed})", schema="auth")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_outbound_mail_kind"), "outbound_mail", schema="auth", type_="check")
    _kind_check(OLD_KINDS + NOTICE_KINDS)


def downgrade() -> None:
    # Notices are of no use once their moment has passed: the older schema has no place for them.
    listed = ", ".join(f"'{kind}'" for kind in NOTICE_KINDS)
    op.execute(f"DELETE FROM auth.outbound_mail WHERE kind IN ({listed})")  # noqa: S608 - constants
    op.drop_constraint(op.f("ck_outbound_mail_kind"), "outbound_mail", schema="auth", type_="check")
    _kind_check(OLD_KINDS)
