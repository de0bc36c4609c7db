"""Account email: verified addresses, the outbound-mail outbox the worker sends from, and the hashes of
the one-time tokens in verification and password-reset emails.

Accounts that exist before this revision count as verified (since their creation): nobody could verify
them before, and they keep everything they could do (docs/decisions.md).
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True), schema="auth")
    op.execute("UPDATE auth.users SET email_verified_at = created_at")

    op.create_table(
        "outbound_mail",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("renders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "kind IN ('verify_email', 'password_reset', 'invitation')", name=op.f("ck_outbound_mail_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'cancelled')", name=op.f("ck_outbound_mail_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_outbound_mail_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_mail")),
        schema="auth",
    )
    op.create_index(op.f("ix_outbound_mail_user_id"), "outbound_mail", ["user_id"], unique=False, schema="auth")
    op.create_index(
        "ix_outbound_mail_pending",
        "outbound_mail",
        ["created_at"],
        unique=False,
        schema="auth",
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.create_table(
        "email_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("mail_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('verify_email', 'password_reset')", name=op.f("ck_email_tokens_purpose")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_email_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["mail_id"],
            ["auth.outbound_mail.id"],
            name=op.f("fk_email_tokens_mail_id_outbound_mail"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_email_tokens_token_hash")),
        schema="auth",
    )
    op.create_index(op.f("ix_email_tokens_user_id"), "email_tokens", ["user_id"], unique=False, schema="auth")
    op.create_index(op.f("ix_email_tokens_mail_id"), "email_tokens", ["mail_id"], unique=False, schema="auth")


def downgrade() -> None:
    op.drop_index(op.f("ix_email_tokens_mail_id"), table_name="email_tokens", schema="auth")
    op.drop_index(op.f("ix_email_tokens_user_id"), table_name="email_tokens", schema="auth")
    op.drop_table("email_tokens", schema="auth")
    op.drop_index("ix_outbound_mail_pending", table_name="outbound_mail", schema="auth")
    op.drop_index(op.f("ix_outbound_mail_user_id"), table_name="outbound_mail", schema="auth")
    op.drop_table("outbound_mail", schema="auth")
    op.drop_column("users", "email_verified_at", schema="auth")
