"""Double opt-in for email channels: an address gets no mail but its confirmation link until its recipient uses it.

A new email channel, or one whose address changed, is unconfirmed and is sent one `channel.confirmation` event
(to it alone). The link's one-time token is minted when the worker claims that delivery, as auth mints its
emailed links when a mail is rendered: only its SHA-256 is stored, a newer link replaces an older one, it expires
after `TOKEN_LIFETIME` and works once. The token carries the channel's workspace id, so the public confirm
route reads that workspace's rows only (`owr_shared.wall`) without a caller.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_usage.alerts.service import raise_event
from owr_usage.channels.errors import (
    ChannelDisabled,
    ConfirmationLinkExpired,
    InvalidConfirmationLink,
    NothingToConfirm,
)
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.models import AlertChannel
from owr_usage.channels.repository import ChannelRepository
from owr_usage.deliveries.repository import DeliveryRepository

log = get_logger(__name__)

TOKEN_LIFETIME = timedelta(days=7)
CONFIRM_PATH = "/confirm-email-channel"
PENDING = "pending"
CONFIRMED = "confirmed"
UNCONFIRMED_ERROR = "the address has not confirmed it wants alerts yet"
# `owrc_` + the workspace id (32 hex digits) + 32 random bytes (43 url-safe characters), as auth's `owrv_` links.
TOKEN_PREFIX = "owrc_"  # noqa: S105 - a token's prefix (the log redactor's `owr?_`), not a secret
# The whole shape, ASCII only: `uuid.UUID(hex=...)` alone takes Unicode digits, and hashing wants ASCII.
_TOKEN_SHAPE = re.compile(r"owrc_[0-9a-f]{32}[A-Za-z0-9_-]{43}\Z", re.ASCII)


def confirmation(channel: AlertChannel) -> str | None:
    """What a channel's view says: `pending` or `confirmed` for an email channel, None for the others."""
    if channel.type != "email":
        return None
    return CONFIRMED if channel.email_confirmed_at is not None else PENDING


def unconfirmed(channel: AlertChannel) -> bool:
    return channel.type == "email" and channel.email_confirmed_at is None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def workspace_of(token: str) -> uuid.UUID:
    """The workspace a well-formed token names; `InvalidConfirmationLink` for anything else."""
    if not _TOKEN_SHAPE.match(token):
        raise InvalidConfirmationLink()
    try:
        return uuid.UUID(hex=token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 32])
    except ValueError:
        raise InvalidConfirmationLink() from None


async def request(session: AsyncSession, channel: AlertChannel, *, now: datetime) -> uuid.UUID | None:
    """Raise the channel's confirmation event (a delivery to it alone, unless it is disabled); its id."""
    data = {"channel_id": str(channel.id), "name": channel.name}
    return await raise_event(
        session,
        workspace_id=channel.workspace_id,
        type="channel.confirmation",
        data=data,
        occurred_at=now,
        only_channel=channel.id,
    )


async def reset(session: AsyncSession, channel: AlertChannel, *, now: datetime) -> None:
    """The (locked) email channel's address changed: unconfirmed again, its waiting deliveries and its earlier
    link dropped, and a confirmation sent to the new address."""
    channel.email_confirmed_at = None
    await session.flush()
    repository = ChannelRepository(session)
    await repository.drop_confirmation(channel.id)
    await DeliveryRepository(session).fail_pending(channel.id, f"address changed: {UNCONFIRMED_ERROR}")
    await request(session, channel, now=now)


async def resend(session: AsyncSession, channel: AlertChannel, limit: ChannelTestLimit, *, now: datetime) -> uuid.UUID:
    """Another confirmation email, counted against the channel's test limits (it is mail sent on demand)."""
    if not unconfirmed(channel):
        raise NothingToConfirm()
    if channel.disabled_at is not None:
        raise ChannelDisabled()
    await limit.spend_confirmation(channel.workspace_id, channel.id, None)
    event_id = await request(session, channel, now=now)
    assert event_id is not None  # only a dedup key makes a repeat
    log.info("channel_confirmation_resent", channel_id=str(channel.id), workspace_id=str(channel.workspace_id))
    return event_id


async def mint_link(
    session: AsyncSession, *, channel_id: uuid.UUID, workspace_id: uuid.UUID, base_url: str, now: datetime
) -> str:
    """A new one-time link for the channel (the worker is about to email it); earlier links stop working."""
    token = f"{TOKEN_PREFIX}{workspace_id.hex}{secrets.token_urlsafe(32)}"
    await ChannelRepository(session).put_confirmation(
        channel_id=channel_id, workspace_id=workspace_id, token_hash=hash_token(token), expires_at=now + TOKEN_LIFETIME
    )
    return f"{base_url}{CONFIRM_PATH}?token={token}"


async def confirm(session: AsyncSession, *, token: str, now: datetime) -> AlertChannel:
    """Spend the token and confirm its channel's address; 410 when it expired, was used or was replaced."""
    workspace_of(token)
    repository = ChannelRepository(session)
    found = await repository.take_confirmation(hash_token(token))
    if found is None or found.expires_at <= now:
        raise ConfirmationLinkExpired()
    channel = await repository.get(found.workspace_id, found.channel_id, for_update=True)
    if channel is None:
        raise ConfirmationLinkExpired()
    if channel.email_confirmed_at is None:
        channel.email_confirmed_at = now
        await repository.audit(
            [
                {
                    "workspace_id": channel.workspace_id,
                    "channel_id": channel.id,
                    "action": "confirmed",
                    "actor": "recipient",
                    "at": now,
                }
            ]
        )
        await session.flush()
    log.info("channel_email_confirmed", channel_id=str(channel.id), workspace_id=str(channel.workspace_id))
    return channel
