"""The `keys.openrouter_keys` table: one stored OpenRouter key, sealed, with its last known state."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from owr_keys.base import KeysBase, utcnow
from owr_keys.vault.crypto import SealedSecret

KINDS = ("inference", "management")
STATUSES = ("pending", "valid", "invalid", "disabled", "error")
LAST_ERROR_MAX = 500
# Columns whose values are key material or derived from it; never shown by `repr`.
SECRET_COLUMNS = frozenset({"ciphertext", "nonce", "wrapped_dek", "dek_nonce", "fingerprint"})


class OpenRouterKey(KeysBase):
    """A stored key. The secret exists here only as a sealed envelope; `label` is the masked form."""

    __tablename__ = "openrouter_keys"
    __table_args__ = (
        UniqueConstraint("workspace_id", "fingerprint", name="uq_openrouter_keys_workspace_fingerprint"),
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        Index("ix_openrouter_keys_workspace_created", "workspace_id", "created_at"),
        # The due-for-sync scan: active keys, never synced first, then oldest sync.
        Index("ix_openrouter_keys_due", "last_synced_at", postgresql_where=text("is_active")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    label: Mapped[str] = mapped_column(String(32), nullable=False)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dek_nonce: Mapped[bytes] = mapped_column(LargeBinary(12), nullable=False)
    kek_version: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default="true")
    # Unconstrained NUMERIC: money keeps every digit OpenRouter reports.
    limit: Mapped[Decimal | None] = mapped_column("limit", Numeric(), nullable=True)
    limit_reset: Mapped[str | None] = mapped_column(String(32), nullable=True)
    limit_remaining: Mapped[Decimal | None] = mapped_column(Numeric(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The due scan's lease: a scan that took the key for a sync; no other scan takes it before this time.
    sync_claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    @property
    def sealed(self) -> SealedSecret:
        """The envelope as the vault takes it; still encrypted."""
        return SealedSecret(self.ciphertext, self.nonce, self.wrapped_dek, self.dek_nonce, self.kek_version)

    def reseal(self, sealed: SealedSecret) -> None:
        self.ciphertext = sealed.ciphertext
        self.nonce = sealed.nonce
        self.wrapped_dek = sealed.wrapped_dek
        self.dek_nonce = sealed.dek_nonce
        self.kek_version = sealed.kek_version

    def __repr__(self) -> str:
        shown = ("id", "workspace_id", "name", "label", "kek_version", "kind", "status", "is_active")
        # From the instance dict, so an expired attribute never triggers I/O inside repr.
        parts = [f"{name}={self.__dict__.get(name)!r}" for name in shown]
        parts += [f"{name}=***" for name in sorted(SECRET_COLUMNS)]
        return f"OpenRouterKey({', '.join(parts)})"
