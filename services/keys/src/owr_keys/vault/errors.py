"""Vault errors."""

from __future__ import annotations

from owr_shared.errors import ProblemError


class KeyUnreadable(ProblemError):
    """A stored key failed to decrypt: tampered row, moved ciphertext, or a KEK that is not configured.

    The detail is fixed text: it never carries key material, ciphertext or the cause's message.
    """

    status, slug, title = 500, "key-unreadable", "Key Unreadable"
    default_detail = "The stored key could not be decrypted."
