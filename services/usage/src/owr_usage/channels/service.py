"""Creating, changing, rotating, testing, disabling and deleting channels; every change to a sealed value or the
channel's state is audited. The URL, the address and the secrets are sealed before they are stored and shown only
once (a new webhook's secret, a rotation's new one)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.auth import EmailNotVerified
from owr_shared.dependencies import Pagination
from owr_shared.envelope import Envelope, SealedSecret
from owr_shared.logging import get_logger
from owr_shared.wire.alerts import ChannelTarget, ChannelType
from owr_usage.alerts.service import raise_event
from owr_usage.channels import confirmation, targets
from owr_usage.channels.errors import (
    RECEIVE_ALERTS,
    ChannelDisabled,
    ChannelHasNoSecret,
    ChannelNotFound,
    EmailNotConfirmed,
    InvalidChannelTarget,
    TooManyChannels,
)
from owr_usage.channels.limits import ChannelTestLimit
from owr_usage.channels.models import AlertChannel, ChannelSecret
from owr_usage.channels.repository import ChannelRepository
from owr_usage.channels.schemas import URL_TYPES, CreateChannelRequest, SecretRotated, UpdateChannelRequest
from owr_usage.channels.sealing import binding, new_secret
from owr_usage.deliveries.repository import DeliveryRepository
from owr_usage.deliveries.schedule import SECRET_OVERLAP
from owr_usage.erasure.service import refuse_erased
from owr_usage.metrics import CHANNELS_DISABLED

log = get_logger(__name__)

USER_DISABLED = "disabled by a user"


@dataclass(frozen=True, slots=True)
class CreatedChannel:
    row: AlertChannel
    secret: str | None = field(repr=False)


async def _audit(session: AsyncSession, channel: AlertChannel, action: str, actor: str, now: datetime) -> None:
    await ChannelRepository(session).audit(
        [{"workspace_id": channel.workspace_id, "channel_id": channel.id, "action": action, "actor": actor, "at": now}]
    )


async def _seal(
    session: AsyncSession,
    envelope: Envelope,
    channel: AlertChannel,
    kind: str,
    plaintext: str,
    expires_at: datetime | None = None,
) -> None:
    sealed = envelope.seal(plaintext, binding(channel.workspace_id, channel.id, kind))
    await ChannelRepository(session).put_secret(
        channel_id=channel.id, workspace_id=channel.workspace_id, kind=kind, sealed=sealed, expires_at=expires_at
    )


def _target(channel_type: str, url: str | None, email: str | None, *, production: bool) -> tuple[str, str]:
    """The value to seal and the hint to show, once the deployment's rules admit it."""
    if channel_type in URL_TYPES:
        if url is None:
            raise InvalidChannelTarget("url", f"a {channel_type} channel takes a url")
        targets.check_url(channel_type, url, production=production)
        return url, targets.url_hint(url)
    if email is None:
        raise InvalidChannelTarget("email", "an email channel takes an email")
    return email, targets.email_hint(email)


async def create_channel(
    session: AsyncSession,
    envelope: Envelope,
    *,
    actor: str,
    workspace_id: uuid.UUID,
    request: CreateChannelRequest,
    production: bool,
    max_channels: int,
    confirmations: ChannelTestLimit,
    now: datetime,
) -> CreatedChannel:
    """Store the channel with its target sealed; a webhook gets its signing secret, returned this once, and an
    email channel its confirmation email (it gets nothing else until its address confirms)."""
    value, hint = _target(request.type, request.url, request.email, production=production)
    await refuse_erased(session, workspace_id)
    repository = ChannelRepository(session)
    if await repository.count_locked(workspace_id) >= max_channels:
        raise TooManyChannels(max_channels)
    row = await repository.insert(
        {
            "id": uuid.uuid4(),
            "workspace_id": workspace_id,
            "type": request.type,
            "name": request.name,
            "target_hint": hint,
            "events": request.events,
            "consecutive_failures": 0,
        }
    )
    await _seal(session, envelope, row, "target", value)
    secret = new_secret() if request.type == "webhook" else None
    if secret is not None:
        await _seal(session, envelope, row, "secret", secret)
    await _audit(session, row, "created", actor, now)
    if row.type == "email":
        await confirmations.spend_confirmation(workspace_id, row.id, value)
        await confirmation.request(session, row, now=now)
    log.info("channel_created", channel_id=str(row.id), workspace_id=str(workspace_id), channel_type=row.type)
    return CreatedChannel(row, secret)


async def list_channels(
    session: AsyncSession, *, workspace_id: uuid.UUID, paging: Pagination
) -> tuple[Sequence[AlertChannel], int]:
    return await ChannelRepository(session).page(workspace_id, offset=paging.offset, limit=paging.per_page)


async def get_channel(
    session: AsyncSession, *, workspace_id: uuid.UUID, channel_id: uuid.UUID, for_update: bool = False
) -> AlertChannel:
    row = await ChannelRepository(session).get(workspace_id, channel_id, for_update=for_update)
    if row is None:
        raise ChannelNotFound()
    return row


async def update_channel(
    session: AsyncSession,
    envelope: Envelope,
    *,
    actor: str,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    request: UpdateChannelRequest,
    verified: bool,
    production: bool,
    confirmations: ChannelTestLimit,
    now: datetime,
) -> AlertChannel:
    """Apply the fields present; one `updated` audit row for any change of name, events or target, and an
    `enabled` or `disabled` row for a change of state. A no-op records nothing.

    Enabling the channel, changing its target or changing its events (which alerts it receives) needs a
    `verified` caller (403 `email-not-verified`); renaming, disabling, or sending the events it has do not.
    Sending an email channel an address (even the same one) makes it unconfirmed again, with a new confirmation
    email to that address."""
    channel = await get_channel(session, workspace_id=workspace_id, channel_id=channel_id, for_update=True)
    redirects = request.enabled is True or request.url is not None or request.email is not None
    if not verified and (redirects or _events_change(request, channel)):
        raise EmailNotVerified(RECEIVE_ALERTS)
    changed = readdressed = False
    if request.url is not None or request.email is not None:
        wanted, other = ("url", "email") if channel.type in URL_TYPES else ("email", "url")
        if getattr(request, other) is not None:
            raise InvalidChannelTarget(other, f"a {channel.type} channel takes a {wanted}, not an {other}")
        value, hint = _target(channel.type, request.url, request.email, production=production)
        if channel.type == "email":
            await confirmations.spend_confirmation(workspace_id, channel.id, value)
        await _seal(session, envelope, channel, "target", value)
        channel.target_hint, changed, readdressed = hint, True, channel.type == "email"
    if request.name is not None and request.name != channel.name:
        channel.name, changed = request.name, True
    if "events" in request.model_fields_set and request.events != channel.events:
        channel.events, changed = list(request.events) if request.events is not None else None, True
    if changed:
        await _audit(session, channel, "updated", actor, now)
    if request.enabled is True and channel.disabled_at is not None:
        channel.disabled_at = channel.disabled_reason = channel.failing_since = None
        channel.consecutive_failures = 0
        await _audit(session, channel, "enabled", actor, now)
    elif request.enabled is False and channel.disabled_at is None:
        await disable_channel(session, channel, kind="user", reason=USER_DISABLED, actor=actor, now=now, notify=False)
    if readdressed:
        await confirmation.reset(session, channel, now=now)
    await session.flush()
    return channel


def _events_change(request: UpdateChannelRequest, channel: AlertChannel) -> bool:
    """Whether the request asks for other events than the channel's (in any order: the web form sends them all)."""
    if "events" not in request.model_fields_set:
        return False
    wanted = None if request.events is None else set(request.events)
    return wanted != (None if channel.events is None else set(channel.events))


async def delete_channel(
    session: AsyncSession, *, actor: str, workspace_id: uuid.UUID, channel_id: uuid.UUID, now: datetime
) -> None:
    """Delete the channel with its sealed values, deliveries and their log; its audit rows stay (until the
    workspace is erased), and so do the events it was sent (`GET /alerts`)."""
    row = await ChannelRepository(session).delete(workspace_id, channel_id)
    if row is None:
        raise ChannelNotFound()
    await _audit(session, row, "deleted", actor, now)
    log.info("channel_deleted", channel_id=str(channel_id), workspace_id=str(workspace_id))


async def rotate_secret(
    session: AsyncSession,
    envelope: Envelope,
    *,
    actor: str,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    now: datetime,
) -> SecretRotated:
    """A new signing secret; the current one becomes the previous one and keeps signing for `SECRET_OVERLAP`
    (replacing an older previous one: two secrets sign at the most)."""
    channel = await get_channel(session, workspace_id=workspace_id, channel_id=channel_id, for_update=True)
    if channel.type != "webhook":
        raise ChannelHasNoSecret()
    repository = ChannelRepository(session)
    current = await repository.secret(channel.id, "secret")
    expires_at = now + SECRET_OVERLAP
    if current is not None:
        old = envelope.open(_sealed(current), binding(channel.workspace_id, channel.id, "secret"))
        await _seal(session, envelope, channel, "previous_secret", old, expires_at)
    secret = new_secret()
    await _seal(session, envelope, channel, "secret", secret)
    await _audit(session, channel, "rotated", actor, now)
    log.info("channel_secret_rotated", channel_id=str(channel.id), workspace_id=str(workspace_id))
    return SecretRotated(id=channel.id, secret=secret, previous_expires_at=expires_at)


async def send_test(
    session: AsyncSession,
    limit: ChannelTestLimit,
    *,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    now: datetime,
) -> uuid.UUID:
    """A `test` event for this channel alone, whatever its `events`; never deduplicated. Counted against the
    channel's and the workspace's limits once it is known to be the caller's (another workspace cannot spend
    them)."""
    channel = await get_channel(session, workspace_id=workspace_id, channel_id=channel_id)
    if channel.disabled_at is not None:
        raise ChannelDisabled()
    if confirmation.unconfirmed(channel):
        raise EmailNotConfirmed()
    await limit.spend(workspace_id, channel.id)
    data = {
        "channel_id": str(channel.id),
        "name": channel.name,
        "message": "A test event from OpenRouter Watcher: this channel receives alerts.",
    }
    event_id = await raise_event(
        session, workspace_id=workspace_id, type="test", data=data, occurred_at=now, only_channel=channel.id
    )
    assert event_id is not None  # only a dedup key makes a repeat
    return event_id


async def disable_channel(
    session: AsyncSession,
    channel: AlertChannel,
    *,
    kind: str,
    reason: str,
    actor: str,
    now: datetime,
    notify: bool,
) -> None:
    """Disable the (locked) channel: its pending deliveries fail, and with `notify` the workspace's other
    channels get a `channel.disabled` event (once per disabling)."""
    channel.disabled_at, channel.disabled_reason = now, reason
    await session.flush()
    failed = await DeliveryRepository(session).fail_pending(channel.id, f"channel disabled: {reason}")
    await _audit(session, channel, "disabled", actor, now)
    CHANNELS_DISABLED.labels(kind).inc()
    log.warning(
        "channel_disabled",
        channel_id=str(channel.id),
        workspace_id=str(channel.workspace_id),
        cause=kind,
        deliveries_failed=failed,
    )
    if notify:
        data = {
            "channel_id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "reason": reason,
            "disabled_at": now.isoformat(),
        }
        await raise_event(
            session,
            workspace_id=channel.workspace_id,
            type="channel.disabled",
            data=data,
            occurred_at=now,
            dedup_key=f"channel.disabled:{channel.id}:{now.isoformat()}",
        )


def _sealed(row: ChannelSecret) -> SealedSecret:
    return SealedSecret(row.ciphertext, row.nonce, row.wrapped_dek, row.dek_nonce, row.kek_version)


def reveal(envelope: Envelope, channel: AlertChannel, values: Sequence[ChannelSecret]) -> ChannelTarget:
    """The channel as the worker sends to it: its target opened, and the secrets that sign now, newest first.
    Raises `ChannelUnreadable` when a value does not open."""
    opened = {
        row.kind: envelope.open(_sealed(row), binding(channel.workspace_id, channel.id, row.kind)) for row in values
    }
    target = opened.get("target")
    secrets = [opened[kind] for kind in ("secret", "previous_secret") if kind in opened]
    return ChannelTarget(
        id=channel.id,
        workspace_id=channel.workspace_id,
        type=cast(ChannelType, channel.type),
        name=channel.name,
        url=target if channel.type in URL_TYPES else None,
        email=target if channel.type == "email" else None,
        secrets=secrets,
    )
