"""Teams: the viewer role and one owner per workspace, personal workspaces, sessions bound to a workspace,
API tokens carrying their minter's role, invitations (token stored hashed) and the membership audit."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"

ROLES = "('owner', 'admin', 'member', 'viewer')"
INVITABLE = "('admin', 'member', 'viewer')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_memberships_role"), "memberships", schema="auth", type_="check")
    op.create_check_constraint(op.f("ck_memberships_role"), "memberships", f"role IN {ROLES}", schema="auth")
    # A workspace has exactly one owner: a transfer demotes the old one before it promotes the new one.
    op.create_index(
        "uq_memberships_one_owner",
        "memberships",
        ["workspace_id"],
        unique=True,
        schema="auth",
        postgresql_where=sa.text("role = 'owner'"),
    )

    # Every workspace so far was made at registration: each is its person's personal workspace.
    op.add_column(
        "workspaces",
        sa.Column("personal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        schema="auth",
    )
    op.execute("UPDATE auth.workspaces SET personal = true")

    # The workspace a session acts in (switch); null means the person's first one, as before.
    op.add_column("refresh_token_families", sa.Column("workspace_id", sa.Uuid(), nullable=True), schema="auth")
    op.create_foreign_key(
        op.f("fk_refresh_token_families_workspace_id_workspaces"),
        "refresh_token_families",
        "workspaces",
        ["workspace_id"],
        ["id"],
        source_schema="auth",
        referent_schema="auth",
        ondelete="SET NULL",
    )

    # The minter's role when the token was made (its ceiling); older tokens take their membership's.
    op.add_column("api_tokens", sa.Column("role", sa.String(length=16), nullable=True), schema="auth")
    op.execute(
        "UPDATE auth.api_tokens t SET role = m.role FROM auth.memberships m"
        " WHERE m.user_id = t.user_id AND m.workspace_id = t.workspace_id"
    )
    op.execute("UPDATE auth.api_tokens SET role = 'viewer' WHERE role IS NULL")
    op.alter_column("api_tokens", "role", nullable=False, schema="auth")
    op.create_check_constraint(op.f("ck_api_tokens_role"), "api_tokens", f"role IN {ROLES}", schema="auth")
    op.create_index("ix_api_tokens_workspace_id", "api_tokens", ["workspace_id", "user_id"], schema="auth")

    op.create_table(
        "invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"role IN {INVITABLE}", name=op.f("ck_invitations_role")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["auth.workspaces.id"],
            name=op.f("fk_invitations_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["auth.users.id"], name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["auth.users.id"], name=op.f("fk_invitations_accepted_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
        schema="auth",
    )
    # One open invitation per address and workspace (inviting again replaces it).
    op.create_index(
        "uq_invitations_open",
        "invitations",
        ["workspace_id", "email"],
        unique=True,
        schema="auth",
        postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("subject_user_id", sa.Uuid(), nullable=True),
        sa.Column("subject_email", sa.String(length=254), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["auth.workspaces.id"],
            name=op.f("fk_audit_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["auth.users.id"], name=op.f("fk_audit_events_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["subject_user_id"],
            ["auth.users.id"],
            name=op.f("fk_audit_events_subject_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        schema="auth",
    )
    op.create_index("ix_audit_events_workspace_at", "audit_events", ["workspace_id", "at"], schema="auth")


def downgrade() -> None:
    op.drop_index("ix_audit_events_workspace_at", table_name="audit_events", schema="auth")
    op.drop_table("audit_events", schema="auth")
    op.drop_index("uq_invitations_open", table_name="invitations", schema="auth")
    op.drop_table("invitations", schema="auth")
    op.drop_index("ix_api_tokens_workspace_id", table_name="api_tokens", schema="auth")
    op.drop_constraint(op.f("ck_api_tokens_role"), "api_tokens", schema="auth", type_="check")
    op.drop_column("api_tokens", "role", schema="auth")
    op.drop_constraint(
        op.f("fk_refresh_token_families_workspace_id_workspaces"),
        "refresh_token_families",
        schema="auth",
        type_="foreignkey",
    )
    op.drop_column("refresh_token_families", "workspace_id", schema="auth")
    op.drop_column("workspaces", "personal", schema="auth")
    op.drop_index("uq_memberships_one_owner", table_name="memberships", schema="auth")
    op.execute("DELETE FROM auth.memberships WHERE role = 'viewer'")
    op.drop_constraint(op.f("ck_memberships_role"), "memberships", schema="auth", type_="check")
    op.create_check_constraint(
        op.f("ck_memberships_role"), "memberships", "role IN ('owner', 'admin', 'member')", schema="auth"
    )
