"""Two-factor sign-in (a sealed TOTP secret per user, hashed recovery codes) and what the session list
shows of each session (last use, user agent, address)."""

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.create_table(
        "totp_credentials",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=False),
        sa.Column("dek_nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("kek_version", sa.String(length=32), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_totp_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_credentials")),
        schema="auth",
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth.users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("user_id", "code_hash", name=op.f("uq_recovery_codes_user_id")),
        schema="auth",
    )
    op.add_column(
        "refresh_token_families", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True), schema="auth"
    )
    op.add_column(
        "refresh_token_families", sa.Column("user_agent", sa.String(length=256), nullable=True), schema="auth"
    )
    op.add_column("refresh_token_families", sa.Column("ip", sa.String(length=64), nullable=True), schema="auth")


def downgrade() -> None:
    op.drop_column("refresh_token_families", "ip", schema="auth")
    op.drop_column("refresh_token_families", "user_agent", schema="auth")
    op.drop_column("refresh_token_families", "last_used_at", schema="auth")
    op.drop_table("recovery_codes", schema="auth")
    op.drop_table("totp_credentials", schema="auth")
