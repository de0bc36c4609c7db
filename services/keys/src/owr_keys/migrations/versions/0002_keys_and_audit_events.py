"""Stored OpenRouter keys (sealed envelopes, masked labels, last sync state) and their audit events."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_keys"
down_revision: str | None = "0001_keys"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'renamed', 'activated', 'deactivated', 'deleted', 'sync_requested', 'revealed', 'status_reported')",
            name=op.f("ck_audit_events_action"),
        ),
        sa.CheckConstraint("actor_type IN ('user', 'service')", name=op.f("ck_audit_events_actor_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        schema="keys",
    )
    op.create_index("ix_audit_events_key_id_id", "audit_events", ["key_id", "id"], unique=False, schema="keys")
    op.create_index("ix_audit_events_workspace_id", "audit_events", ["workspace_id"], unique=False, schema="keys")
    op.create_table(
        "openrouter_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("wrapped_dek", sa.LargeBinary(), nullable=False),
        sa.Column("dek_nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("kek_version", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("limit", sa.Numeric(), nullable=True),
        sa.Column("limit_reset", sa.String(length=32), nullable=True),
        sa.Column("limit_remaining", sa.Numeric(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('inference', 'management')", name=op.f("ck_openrouter_keys_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'valid', 'invalid', 'disabled', 'error')", name=op.f("ck_openrouter_keys_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openrouter_keys")),
        sa.UniqueConstraint("workspace_id", "fingerprint", name="uq_openrouter_keys_workspace_fingerprint"),
        schema="keys",
    )
    op.create_index(
        op.f("ix_keys_openrouter_keys_kek_version"), "openrouter_keys", ["kek_version"], unique=False, schema="keys"
    )
    op.create_index(
        "ix_openrouter_keys_due",
        "openrouter_keys",
        ["last_synced_at"],
        unique=False,
        schema="keys",
        postgresql_where=sa.text("is_active"),
    )
    op.create_index(
        "ix_openrouter_keys_workspace_created",
        "openrouter_keys",
        ["workspace_id", "created_at"],
        unique=False,
        schema="keys",
    )


def downgrade() -> None:
    op.drop_index("ix_openrouter_keys_workspace_created", table_name="openrouter_keys", schema="keys")
    op.drop_index(
        "ix_openrouter_keys_due", table_name="openrouter_keys", schema="keys", postgresql_where=sa.text("is_active")
    )
    op.drop_index(op.f("ix_keys_openrouter_keys_kek_version"), table_name="openrouter_keys", schema="keys")
    op.drop_table("openrouter_keys", schema="keys")
    op.drop_index("ix_audit_events_workspace_id", table_name="audit_events", schema="keys")
    op.drop_index("ix_audit_events_key_id_id", table_name="audit_events", schema="keys")
    op.drop_table("audit_events", schema="keys")
