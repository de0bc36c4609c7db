"""`/api/v1/workspaces`: the caller's workspaces: make one, list them, rename or delete one.

Workspaces are managed by a signed-in person (an API token gets 403 `session-required`). A workspace
the caller is not a member of is a 404 on every route; a role too low for the route, a 403.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from owr_auth.dependencies import Cleanup, RedisClient, SessionPrincipal, Sessions, SessionUser, Settings
from owr_auth.workspaces import service as workspace_service
from owr_auth.workspaces.deletion import delete_workspace
from owr_auth.workspaces.schemas import CreateWorkspaceRequest, RenameWorkspaceRequest, WorkspaceItem, WorkspaceView
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkspaceItem,
    responses=problem_responses(400, 401, 403, 409, 422),
    summary="Create a workspace (you are its owner)",
)
async def create_workspace(
    body: CreateWorkspaceRequest, caller: SessionUser, session: DbSession, settings: Settings
) -> Response:
    """Switch to it (`POST /api/v1/auth/switch`) to act in it. 409 `too-many-workspaces` past
    `AUTH_WORKSPACES_PER_USER_MAX` owned at once."""
    created = await workspace_service.create(session, settings, caller, name=body.name)
    return json_response(created, status.HTTP_201_CREATED)


@router.get(
    "",
    response_model=Page[WorkspaceItem],
    responses=problem_responses(401, 403, 422),
    summary="Your workspaces, with your role in each",
)
async def list_workspaces(caller: SessionUser, session: DbSession, paging: Paging) -> Response:
    """Your personal workspace first, then the others by name."""
    items, total = await workspace_service.page_mine(session, caller, offset=paging.offset, limit=paging.per_page)
    return json_response(Page[WorkspaceItem](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.patch(
    "/{workspace_id}",
    response_model=WorkspaceView,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Rename a workspace (admin)",
)
async def rename_workspace(
    workspace_id: uuid.UUID, body: RenameWorkspaceRequest, caller: SessionUser, session: DbSession
) -> Response:
    return json_response(await workspace_service.rename(session, caller, workspace_id, name=body.name))


@router.delete(
    "/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        202: {"description": "Deleted; another service's erasure finishes within the hour (the sweep)"},
        **problem_responses(401, 403, 404, 409, 422, 503),
    },
    summary="Delete a workspace and its data in every service (owner)",
)
async def remove_workspace(
    workspace_id: uuid.UUID,
    principal: SessionPrincipal,
    sessions: Sessions,
    redis: RedisClient,
    settings: Settings,
    cleanup: Cleanup,
) -> Response:
    """Delete the workspace as an account deletion deletes one: its members lose it and every token acting
    in it stops working at once, then every service erases its keys and figures. 204 when all have; 202
    when one could not be reached (the sweep finishes it). A personal workspace goes only with its
    account: 409 `personal-workspace`. 503 (nothing changed) when the revocation cannot be recorded."""
    finished = await delete_workspace(
        sessions, redis, settings, cleanup, principal=principal, workspace_id=workspace_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT if finished else status.HTTP_202_ACCEPTED)
