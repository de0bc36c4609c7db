"""`/api/v1/workspaces/{id}/members` and `/transfer`: who is in a workspace, with which role."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from owr_auth.dependencies import RedisClient, SessionUser, Settings
from owr_auth.members import service as member_service
from owr_auth.members.schemas import ChangeRoleRequest, MemberView
from owr_auth.workspaces.schemas import TransferRequest
from owr_shared.auth import Role
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/workspaces", tags=["members"])


@router.get(
    "/{workspace_id}/members",
    response_model=Page[MemberView],
    responses=problem_responses(401, 403, 404, 422),
    summary="The workspace's members",
)
async def list_members(workspace_id: uuid.UUID, caller: SessionUser, session: DbSession, paging: Paging) -> Response:
    """Every member may see who else is in the workspace; the owner first, then admins, members, viewers."""
    items, total = await member_service.page(session, caller, workspace_id, offset=paging.offset, limit=paging.per_page)
    return json_response(Page[MemberView](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.patch(
    "/{workspace_id}/members/{user_id}",
    response_model=MemberView,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    summary="Change a member's role (admin)",
)
async def change_role(
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    body: ChangeRoleRequest,
    caller: SessionUser,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
) -> Response:
    """`admin`, `member` or `viewer` (the owner changes only by a transfer). A lowered role takes effect at
    once: the member's tokens for the workspace stop working and their next refresh carries the new role;
    a raised one applies from their next refresh or switch. 403 `member-outranks-you` for a member above
    your role or a role above yours."""
    changed = await member_service.change_role(session, redis, settings, caller, workspace_id, user_id, Role(body.role))
    return json_response(changed)


@router.delete(
    "/{workspace_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Remove a member (admin), or leave (your own id)",
)
async def remove_member(
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    caller: SessionUser,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
) -> None:
    """Their access ends at once: their tokens for the workspace stop working and their API tokens for it
    are revoked. The owner cannot leave (409 `owner-role-fixed`: transfer the ownership first)."""
    await member_service.remove(session, redis, settings, caller, workspace_id, user_id)


@router.post(
    "/{workspace_id}/transfer",
    response_model=MemberView,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    summary="Transfer the ownership to another member (owner)",
)
async def transfer(
    workspace_id: uuid.UUID,
    body: TransferRequest,
    caller: SessionUser,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
) -> Response:
    """The member becomes the owner and you an admin; your tokens for the workspace stop working at once
    (refresh to act as an admin). A personal workspace is never transferred (409)."""
    return json_response(await member_service.transfer(session, redis, settings, caller, workspace_id, body.user_id))
