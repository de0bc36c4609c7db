"""Email normalisation: one canonical spelling per address, used for storage, lookup and throttling."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_LENGTH = 254


def normalize_email(raw: str) -> str:
    """Strip, NFKC-normalise and lowercase an address (no validation)."""
    return unicodedata.normalize("NFKC", raw.strip()).lower()


def canonical_email(raw: str) -> str | None:
    """The canonical form of a valid address, or None if it is not a valid address."""
    normalized = normalize_email(raw)
    try:
        result = validate_email(normalized, check_deliverability=False)
    except EmailNotValidError:
        return None
    canonical = result.normalized.lower()
    return canonical if len(canonical) <= MAX_EMAIL_LENGTH else None
