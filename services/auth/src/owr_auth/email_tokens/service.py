"""Mint and redeem emailed one-time tokens.

A token is a purpose prefix (`owrv_` verification, `owrp_` password reset, so the log filter and secret
scanners know it) and 256 random bits; auth stores its SHA-256 only, like refresh tokens (a random value
of that size needs no pepper or slow hash). A token is minted when the worker renders its mail: a mail
rendered again (its job retried after a crash) replaces its earlier unused token, so each mail has at
most one live link. Redeeming locks the row, so two uses of one link run one after the other and only
the first works.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.email_tokens.errors import InvalidLink, LinkExpired
from owr_auth.email_tokens.models import EmailToken
from owr_auth.email_tokens.repository import EmailTokenRepository
from owr_auth.metrics import EMAIL_LINKS

Purpose = Literal["verify_email", "password_reset"]
PREFIXES: dict[str, str] = {"verify_email": "owrv_", "password_reset": "owrp_"}
# prefix + token_urlsafe(32): 43 base64url characters.
_RANDOM_LENGTH = 43


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _well_formed(token: str, purpose: Purpose) -> bool:
    prefix = PREFIXES[purpose]
    return token.startswith(prefix) and len(token) == len(prefix) + _RANDOM_LENGTH


async def mint(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    purpose: Purpose,
    mail_id: uuid.UUID | None,
    now: datetime,
    ttl_seconds: int,
) -> str:
    """A new token for the user, valid `ttl_seconds` from `now`; only its hash is stored. Returned once."""
    tokens = EmailTokenRepository(session)
    if mail_id is not None:
        await tokens.discard_unused_of_mail(mail_id)
    raw = PREFIXES[purpose] + secrets.token_urlsafe(32)
    await tokens.add(
        user_id=user_id,
        purpose=purpose,
        mail_id=mail_id,
        token_hash=hash_token(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    return raw


async def redeem(session: AsyncSession, *, purpose: Purpose, token: str, now: datetime) -> EmailToken:
    """Use a token once: its row, marked used (the caller's transaction decides whether that sticks).

    `InvalidLink` (400) for anything auth did not issue for `purpose`; `LinkExpired` (410) for a link that
    expired or worked already.
    """
    if not _well_formed(token, purpose):
        EMAIL_LINKS.labels(purpose, "invalid").inc()
        raise InvalidLink()
    row = await EmailTokenRepository(session).lock_by_hash(hash_token(token))
    if row is None or row.purpose != purpose:
        EMAIL_LINKS.labels(purpose, "invalid").inc()
        raise InvalidLink()
    if row.used_at is not None or row.expires_at <= now:
        EMAIL_LINKS.labels(purpose, "expired").inc()
        raise LinkExpired()
    row.used_at = now
    await session.flush()
    EMAIL_LINKS.labels(purpose, "used").inc()
    return row
