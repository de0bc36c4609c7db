"""`/api/v1/workspaces/{id}/invitations` (an admin's) and `/api/v1/invitations/accept` (the invitee's)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from owr_auth.dependencies import Mails, SessionUser, Settings
from owr_auth.invitations import service as invitation_service
from owr_auth.invitations.schemas import AcceptInvitationRequest, CreateInvitationRequest, InvitationView
from owr_auth.workspaces.schemas import WorkspaceItem
from owr_shared.auth import Role
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1", tags=["invitations"])


@router.post(
    "/workspaces/{workspace_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationView,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
    summary="Invite an email to the workspace with a role (admin)",
)
async def invite(
    workspace_id: uuid.UUID,
    body: CreateInvitationRequest,
    caller: SessionUser,
    session: DbSession,
    settings: Settings,
    queue: Mails,
) -> Response:
    """The address gets an email with a one-time link, valid 7 days; the token is in that email only.
    Inviting an address again replaces its open invitation (the earlier link stops working). 409
    `already-member`, or `too-many-invitations` past `AUTH_INVITATIONS_OPEN_MAX` pending."""
    created = await invitation_service.invite(
        session, settings, queue, caller, workspace_id, email=body.email, role=Role(body.role)
    )
    return json_response(created, status.HTTP_201_CREATED)


@router.get(
    "/workspaces/{workspace_id}/invitations",
    response_model=Page[InvitationView],
    responses=problem_responses(401, 403, 404, 422),
    summary="The workspace's open invitations (admin)",
)
async def list_invitations(
    workspace_id: uuid.UUID, caller: SessionUser, session: DbSession, paging: Paging
) -> Response:
    """Pending and expired ones, newest first; accepted and revoked ones are in the audit."""
    items, total = await invitation_service.page(
        session, caller, workspace_id, offset=paging.offset, limit=paging.per_page
    )
    return json_response(Page[InvitationView](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Revoke an invitation (admin)",
)
async def revoke_invitation(
    workspace_id: uuid.UUID, invitation_id: uuid.UUID, caller: SessionUser, session: DbSession
) -> None:
    await invitation_service.revoke(session, caller, workspace_id, invitation_id)


@router.post(
    "/invitations/accept",
    response_model=WorkspaceItem,
    responses=problem_responses(400, 401, 403, 404, 409, 422),
    summary="Accept an invitation (as the invited address)",
)
async def accept_invitation(body: AcceptInvitationRequest, caller: SessionUser, session: DbSession) -> Response:
    """Join the workspace with the invitation's role; switch to it (`POST /api/v1/auth/switch`) to act
    there. 404 for a token that is unknown, used, revoked or expired; 403 when signed in with another
    address, or before the address is verified."""
    return json_response(await invitation_service.accept(session, caller, token=body.token))
