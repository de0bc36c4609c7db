"""`/api/v1/channels*`: where the workspace's alerts go. Another workspace's channel is a 404 on every route.

A channel's URL or address is never shown again after it is sent, only `target_hint`; a webhook's signing
secret is in the answer of its creation and of each rotation, and nowhere else.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import NO_STORE, Page, json_response, problem_responses
from owr_usage.channels import confirmation
from owr_usage.channels import service as channel_service
from owr_usage.channels.models import AlertChannel
from owr_usage.channels.schemas import (
    ChannelConfirmed,
    ChannelCreated,
    ChannelTestQueued,
    ChannelView,
    ConfirmationQueued,
    CreateChannelRequest,
    DeliveryAttemptView,
    RetryQueued,
    SecretRotated,
    UpdateChannelRequest,
)
from owr_usage.deliveries import service as delivery_service
from owr_usage.dependencies import (
    AlertSender,
    AlertsReader,
    AlertsWriter,
    ChannelTests,
    ChannelVault,
    Clock,
    ConfirmationToken,
    Settings,
)

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])
# The one route without a caller: the recipient of a confirmation email may have no account (DESIGN §11).
confirmations_router = APIRouter(prefix="/api/v1/channel-confirmations", tags=["channels"])

_READ_ERRORS = problem_responses(401, 403, 404, 422)
_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 422)


_VIEW_COLUMNS = (
    "id",
    "type",
    "name",
    "target_hint",
    "events",
    "disabled_at",
    "disabled_reason",
    "failing_since",
    "consecutive_failures",
    "created_at",
    "updated_at",
)


def channel_view(row: AlertChannel) -> ChannelView:
    values = {name: getattr(row, name) for name in _VIEW_COLUMNS}
    extra = {"enabled": row.disabled_at is None, "confirmation": confirmation.confirmation(row)}
    return ChannelView.model_validate({**values, **extra})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelCreated,
    responses=problem_responses(400, 401, 403, 409, 410, 422),
    summary="Add a channel (webhook, Slack, Discord or email)",
)
async def create_channel(
    body: CreateChannelRequest,
    user: AlertSender,
    session: DbSession,
    envelope: ChannelVault,
    settings: Settings,
    clock: Clock,
    limit: ChannelTests,
) -> Response:
    """The URL or address is sealed and never shown again (`target_hint` shows its host, or the address
    masked). A webhook channel's answer carries its signing `secret`, this once. `http` URLs are refused in
    production; Slack takes `https://hooks.slack.com/services/...`, Discord `https://discord.com/api/webhooks/...`.
    409 `too-many-channels` past `USAGE_MAX_CHANNELS_PER_WORKSPACE`. 403 `email-not-verified` for a caller
    whose email address is not verified yet."""
    created = await channel_service.create_channel(
        session,
        envelope,
        actor=user.user_id,
        workspace_id=user.workspace_id,
        request=body,
        production=settings.is_production,
        max_channels=settings.max_channels_per_workspace,
        confirmations=limit,
        now=clock(),
    )
    view = ChannelCreated(**channel_view(created.row).model_dump(), secret=created.secret)
    return json_response(view, status.HTTP_201_CREATED, headers=NO_STORE)


@router.get(
    "", response_model=Page[ChannelView], responses=problem_responses(401, 403, 422), summary="The workspace's channels"
)
async def list_channels(user: AlertsReader, session: DbSession, paging: Paging) -> Response:
    """Newest first."""
    rows, total = await channel_service.list_channels(session, workspace_id=user.workspace_id, paging=paging)
    items = [channel_view(r) for r in rows]
    return json_response(Page[ChannelView](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.get("/{channel_id}", response_model=ChannelView, responses=_READ_ERRORS, summary="One channel")
async def get_channel(channel_id: uuid.UUID, user: AlertsReader, session: DbSession) -> Response:
    row = await channel_service.get_channel(session, workspace_id=user.workspace_id, channel_id=channel_id)
    return json_response(channel_view(row))


@router.patch(
    "/{channel_id}", response_model=ChannelView, responses=_WRITE_ERRORS, summary="Change or re-enable a channel"
)
async def update_channel(
    channel_id: uuid.UUID,
    body: UpdateChannelRequest,
    user: AlertsWriter,
    session: DbSession,
    envelope: ChannelVault,
    settings: Settings,
    clock: Clock,
    limit: ChannelTests,
) -> Response:
    """Fields left out stay as they are; `events: null` takes every event type. A new `url` (or `email`, for
    an email channel) is sealed in place of the old one. `enabled: true` re-enables a disabled channel (its
    failed deliveries stay failed: retry them one by one); `enabled: false` disables it, failing its pending
    deliveries. Enabling a channel or changing its target or its events needs a verified email address (403
    `email-not-verified`); renaming or disabling one does not."""
    row = await channel_service.update_channel(
        session,
        envelope,
        actor=user.user_id,
        workspace_id=user.workspace_id,
        channel_id=channel_id,
        request=body,
        verified=user.email_verified,
        production=settings.is_production,
        confirmations=limit,
        now=clock(),
    )
    return json_response(channel_view(row))


@router.delete(
    "/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_READ_ERRORS, summary="Delete a channel"
)
async def delete_channel(channel_id: uuid.UUID, user: AlertsWriter, session: DbSession, clock: Clock) -> None:
    """Deletes its sealed values, its pending deliveries and its log; events already raised stay in `/alerts`."""
    await channel_service.delete_channel(
        session, actor=user.user_id, workspace_id=user.workspace_id, channel_id=channel_id, now=clock()
    )


@router.post(
    "/{channel_id}/rotate-secret",
    response_model=SecretRotated,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Rotate a webhook channel's signing secret",
)
async def rotate_secret(
    channel_id: uuid.UUID, user: AlertsWriter, session: DbSession, envelope: ChannelVault, clock: Clock
) -> Response:
    """The new secret is in this answer only. For 24 hours the old one signs beside it (two signatures in
    `webhook-signature`), so a receiver can switch without missing a delivery. 409 for a channel that is
    not a webhook."""
    rotated = await channel_service.rotate_secret(
        session, envelope, actor=user.user_id, workspace_id=user.workspace_id, channel_id=channel_id, now=clock()
    )
    return json_response(rotated, headers=NO_STORE)


@router.post(
    "/{channel_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ChannelTestQueued,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
    summary="Send a test event to a channel",
)
async def send_test(
    channel_id: uuid.UUID, user: AlertSender, session: DbSession, limit: ChannelTests, clock: Clock
) -> Response:
    """A `test` event for this channel alone; its attempts appear in the channel's delivery log. 409 when the
    channel is disabled, or `email-not-confirmed` for an email channel whose address has not confirmed; 403 `email-not-verified` for a caller whose email address is not verified yet; 429
    `channel-tests-throttled` (with `Retry-After`) past `USAGE_CHANNEL_TESTS_PER_MINUTE` tests and retries of
    the channel, or `USAGE_WORKSPACE_CHANNEL_TESTS_PER_MINUTE` of all the workspace's channels."""
    event_id = await channel_service.send_test(
        session, limit, workspace_id=user.workspace_id, channel_id=channel_id, now=clock()
    )
    return json_response(ChannelTestQueued(event_id=event_id), status.HTTP_202_ACCEPTED)


@router.get(
    "/{channel_id}/deliveries",
    response_model=Page[DeliveryAttemptView],
    responses=_READ_ERRORS,
    summary="A channel's delivery log",
)
async def delivery_log(channel_id: uuid.UUID, user: AlertsReader, session: DbSession, paging: Paging) -> Response:
    """Every attempt, newest first: its time, the receiver's status code or the error, and the next retry."""
    items, total = await delivery_service.delivery_log(
        session, workspace_id=user.workspace_id, channel_id=channel_id, paging=paging
    )
    page = Page[DeliveryAttemptView](items=items, total=total, page=paging.page, per_page=paging.per_page)
    return json_response(page)


@router.post(
    "/{channel_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RetryQueued,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
    summary="Deliver an event to a channel again",
)
async def retry_delivery(
    channel_id: uuid.UUID,
    delivery_id: uuid.UUID,
    user: AlertSender,
    session: DbSession,
    limit: ChannelTests,
    clock: Clock,
) -> Response:
    """A failed or waiting delivery is due again now, with the same event id (`webhook-id`). 409 when the
    channel is disabled (enable it first) or its address is not confirmed (`email-not-confirmed`), the delivery already succeeded (`delivery-delivered`), or the
    worker is sending it right now; 403 `email-not-verified` for a caller whose email address is not verified
    yet; 429 `channel-tests-throttled` (with `Retry-After`) past the limits tests share, per channel and per
    workspace; 503 `channel-tests-unavailable` without Redis."""
    queued = await delivery_service.retry(
        session,
        limit,
        workspace_id=user.workspace_id,
        channel_id=channel_id,
        delivery_id=delivery_id,
        now=clock(),
    )
    return json_response(queued, status.HTTP_202_ACCEPTED)


@router.post(
    "/{channel_id}/resend-confirmation",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ConfirmationQueued,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
    summary="Send an email channel's confirmation email again",
)
async def resend_confirmation(
    channel_id: uuid.UUID, user: AlertSender, session: DbSession, limit: ChannelTests, clock: Clock
) -> Response:
    """A new confirmation email to the channel's address (earlier links stop working once it is sent). 409
    `nothing-to-confirm` for a channel that is not an unconfirmed email channel, `channel-disabled` for a
    disabled one; counted in the limits tests and retries share (429 `channel-tests-throttled`)."""
    channel = await channel_service.get_channel(session, workspace_id=user.workspace_id, channel_id=channel_id)
    event_id = await confirmation.resend(session, channel, limit, now=clock())
    return json_response(ConfirmationQueued(event_id=event_id), status.HTTP_202_ACCEPTED)


@confirmations_router.post(
    "",
    response_model=ChannelConfirmed,
    responses=problem_responses(400, 410, 422),
    summary="Confirm an email channel's address (its emailed link; no sign-in)",
)
async def confirm_channel(token: ConfirmationToken, session: DbSession, clock: Clock) -> Response:
    """Spend the link's one-time token: the channel's address is confirmed and gets its alerts from now on.
    400 `invalid-link` for a malformed token; 410 `link-expired` when it expired (7 days), was used, was
    replaced by a newer email, or its channel was deleted or given another address."""
    channel = await confirmation.confirm(session, token=token, now=clock())
    view = ChannelConfirmed(channel_id=channel.id, name=channel.name, target_hint=channel.target_hint)
    return json_response(view, headers=NO_STORE)
