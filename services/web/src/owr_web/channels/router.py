"""`/channels` and `/channels/{id}`: list and create; the channel with its delivery log; rotate the secret, send a
test, enable or disable, rename and choose events, retry a failed delivery, delete (confirmed).

A webhook's signing secret comes back once, in the answer to the create or rotate call. Web holds it for the
page the post redirects to (`SessionStore.hold_once`, at most two minutes) and that page takes it: shown once,
gone on reload, never written to a log. A channel's URL or address is never shown back.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from owr_web.alerts.service import EVENT_GROUPS, EVENTS
from owr_web.api.errors import ApiProblem
from owr_web.channels import service
from owr_web.channels.schemas import ChannelEditForm, ChannelForm
from owr_web.dependencies import Checked, Sessions, SignedIn, Views, Visitor
from owr_web.sessions.service import SessionStore
from owr_web.views.forms import Refusal, blame, notice
from owr_web.views.pages import Pages, deletion

router = APIRouter(tags=["channels"])

Page = Annotated[int, Query(ge=1, le=10_000)]
Done = Annotated[str | None, Query(max_length=20)]
NOTICES = {
    "created": "Channel created.",
    "rotated": "New secret made: the old one keeps signing alongside it for 24 hours.",
    "test": "Test event queued: its delivery shows in the log below once sent.",
    "enabled": "Channel enabled.",
    "disabled": "Channel disabled: it receives nothing until enabled again.",
    "saved": "Channel saved.",
    "retried": "Delivery queued again.",
    "confirmation": "Confirmation email queued: the links in earlier ones stop working once it is sent.",
    "deleted": "Channel deleted.",
}


def _secret_name(channel_id: str) -> str:
    return f"channel-secret:{channel_id}"


async def _list_page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    page: int = 1,
    form: ChannelForm | None = None,
    refusal: Refusal | None = None,
    done: str | None = None,
) -> Response:
    data = await service.listing(visitor.api, page=page)
    context = {
        "c": data,
        "form": form or ChannelForm(),
        "errors": refusal.fields if refusal else {},
        "error": refusal.message if refusal else None,
        "notice": notice(done, NOTICES),
        "types": service.TYPES,
        "event_groups": EVENT_GROUPS,
        "events": EVENTS,
    }
    return views.render(request, "channels.html", context, visitor=visitor, status=422 if refusal else 200)


@router.get("/channels", include_in_schema=False)
async def channels_page(
    request: Request, visitor: SignedIn, views: Views, page: Page = 1, done: Done = None
) -> Response:
    return await _list_page(request, views, visitor, page=page, done=done)


async def _hold_secret(sessions: SessionStore, visitor: Visitor, answer: Any) -> None:
    secret = answer.get("secret") if isinstance(answer, dict) else None
    if secret:
        await sessions.hold_once(visitor.session_id, _secret_name(str(answer["id"])), str(secret))


@router.post("/channels", include_in_schema=False)
async def create_channel(
    request: Request, visitor: Checked, views: Views, sessions: Sessions, form: Annotated[ChannelForm, Form()]
) -> Response:
    body, errors = service.body_of(form)
    if errors:
        return await _list_page(request, views, visitor, form=form, refusal=Refusal(errors))
    try:
        created = await visitor.api.create_channel(body)
    except ApiProblem as exc:
        return await _list_page(request, views, visitor, form=form, refusal=blame(exc, service.API_FIELDS))
    await _hold_secret(sessions, visitor, created)
    return RedirectResponse(f"/channels/{created['id']}?done=created", status_code=303)


async def _channel_page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    sessions: SessionStore,
    channel_id: str,
    *,
    page: int = 1,
    done: str | None = None,
    refusal: Refusal | None = None,
    status: int = 200,
) -> Response:
    data = await service.detail(visitor.api, channel_id, page=page)
    secret = await sessions.take_once(visitor.session_id, _secret_name(channel_id))
    context = {
        "d": data,
        "secret": secret,
        "notice": notice(done, NOTICES),
        "errors": refusal.fields if refusal else {},
        "error": refusal.message if refusal else None,
        "event_groups": EVENT_GROUPS,
        "events": EVENTS,
    }
    return views.render(request, "channel.html", context, visitor=visitor, status=status)


@router.get("/channels/{channel_id}", include_in_schema=False)
async def channel_page(
    channel_id: uuid.UUID,
    request: Request,
    visitor: SignedIn,
    views: Views,
    sessions: Sessions,
    page: Page = 1,
    done: Done = None,
) -> Response:
    return await _channel_page(request, views, visitor, sessions, str(channel_id), page=page, done=done)


async def _act(
    request: Request,
    views: Pages,
    visitor: Visitor,
    sessions: SessionStore,
    channel_id: uuid.UUID,
    call: Awaitable[Any],
    done: str,
) -> Response:
    """Run one call of the API for the channel; a refusal is said on the channel's page, where the person acted."""
    try:
        answer = await call
    except ApiProblem as exc:
        refusal = blame(exc, {"name": "name", "events": "events"})
        return await _channel_page(
            request, views, visitor, sessions, str(channel_id), refusal=refusal, status=exc.status
        )
    await _hold_secret(sessions, visitor, answer)
    return RedirectResponse(f"/channels/{channel_id}?done={done}", status_code=303)


@router.post("/channels/{channel_id}/rotate-secret", include_in_schema=False)
async def rotate_secret(
    channel_id: uuid.UUID, request: Request, visitor: Checked, views: Views, sessions: Sessions
) -> Response:
    call = visitor.api.rotate_channel_secret(str(channel_id))
    return await _act(request, views, visitor, sessions, channel_id, call, "rotated")


@router.post("/channels/{channel_id}/test", include_in_schema=False)
async def send_test(
    channel_id: uuid.UUID, request: Request, visitor: Checked, views: Views, sessions: Sessions
) -> Response:
    return await _act(request, views, visitor, sessions, channel_id, visitor.api.test_channel(str(channel_id)), "test")


@router.post("/channels/{channel_id}/resend-confirmation", include_in_schema=False)
async def resend_confirmation(
    channel_id: uuid.UUID, request: Request, visitor: Checked, views: Views, sessions: Sessions
) -> Response:
    call = visitor.api.resend_channel_confirmation(str(channel_id))
    return await _act(request, views, visitor, sessions, channel_id, call, "confirmation")


@router.post("/channels/{channel_id}/enabled", include_in_schema=False)
async def set_enabled(
    channel_id: uuid.UUID,
    request: Request,
    visitor: Checked,
    views: Views,
    sessions: Sessions,
    enabled: Annotated[bool, Form()],
) -> Response:
    call = visitor.api.update_channel(str(channel_id), {"enabled": enabled})
    return await _act(request, views, visitor, sessions, channel_id, call, "enabled" if enabled else "disabled")


@router.post("/channels/{channel_id}/edit", include_in_schema=False)
async def edit_channel(
    channel_id: uuid.UUID,
    request: Request,
    visitor: Checked,
    views: Views,
    sessions: Sessions,
    form: Annotated[ChannelEditForm, Form()],
) -> Response:
    call = visitor.api.update_channel(str(channel_id), service.edit_body_of(form))
    return await _act(request, views, visitor, sessions, channel_id, call, "saved")


@router.post("/channels/{channel_id}/deliveries/{delivery_id}/retry", include_in_schema=False)
async def retry_delivery(
    channel_id: uuid.UUID, delivery_id: uuid.UUID, request: Request, visitor: Checked, views: Views, sessions: Sessions
) -> Response:
    call = visitor.api.retry_delivery(str(channel_id), str(delivery_id))
    return await _act(request, views, visitor, sessions, channel_id, call, "retried")


@router.get("/channels/{channel_id}/delete", include_in_schema=False)
async def confirm_delete(channel_id: uuid.UUID, request: Request, visitor: SignedIn, views: Views) -> Response:
    channel = await visitor.api.channel(str(channel_id))
    said = (
        "Alerts stop going to it, and its pending deliveries are cancelled. The alert history keeps what it was sent."
    )
    here = f"/channels/{channel_id}"
    context = deletion("channel", channel["name"], said, action=f"{here}/delete", cancel=here)
    return views.render(request, "confirm_delete.html", context, visitor=visitor)


@router.post("/channels/{channel_id}/delete", include_in_schema=False)
async def delete_channel(channel_id: uuid.UUID, visitor: Checked) -> Response:
    await visitor.api.delete_channel(str(channel_id))
    return RedirectResponse("/channels?done=deleted", status_code=303)
