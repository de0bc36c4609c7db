"""`/team` (members, invitations, the audit), `/workspaces` (list, create, switch) and `/invite?token=`.

Each action posts to web with the session's CSRF token and calls the public API; a refusal (a role too
low, a member above yours) is shown on the page. Actions a role cannot take are not offered.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem, PageNotFound
from owr_web.dependencies import Checked, MaybeSignedIn, Sessions, SignedIn, Views, Visitor
from owr_web.sessions.service import token_claims
from owr_web.views.pages import Pages

router = APIRouter(tags=["team"])

ROLES = ("admin", "member", "viewer")
NOTICES = {
    "invited": "Invitation sent: it works once, for 7 days.",
    "revoked": "Invitation revoked: its link no longer works.",
    "changed": "Role changed.",
    "removed": "Member removed: their access ended at once.",
    "transferred": "Ownership transferred: you are an admin now.",
    "created": "Workspace created; you are its owner.",
    "joined": "You joined the workspace.",
    "left": "You left the workspace.",
    "deleted": "Workspace deleted.",
}


def _done(path: str, what: str) -> Response:
    return RedirectResponse(f"{path}?done={what}", status_code=303)


async def _team_page(
    request: Request, views: Pages, visitor: Visitor, *, error: str | None = None, status: int = 200
) -> Response:
    session = visitor.session
    workspace = session.workspace_id
    members = await visitor.api.get(f"/api/v1/workspaces/{workspace}/members", per_page=250)
    invitations = audit = None
    if session.can("admin"):
        invitations = await visitor.api.get(f"/api/v1/workspaces/{workspace}/invitations", per_page=250)
        audit = await visitor.api.get(f"/api/v1/workspaces/{workspace}/audit", per_page=20)
    personal = next((w["personal"] for w in session.workspaces if w["id"] == workspace), True)
    context: dict[str, Any] = {
        "members": members["items"],
        "invitations": invitations["items"] if invitations else None,
        "audit": audit["items"] if audit else None,
        "roles": ROLES,
        "personal": personal,
        "me": next((m for m in members["items"] if m["email"] == session.email), None),
        "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    return views.render(request, "team.html", context, visitor=visitor, status=status)


async def _or_page(request: Request, views: Pages, visitor: Visitor, call: Any, done: str) -> Response:
    try:
        await call
    except ApiProblem as exc:
        return await _team_page(request, views, visitor, error=exc.detail, status=exc.status)
    return _done("/team", done)


@router.get("/team", include_in_schema=False)
async def team(request: Request, visitor: SignedIn, views: Views) -> Response:
    return await _team_page(request, views, visitor)


@router.post("/team/invitations", include_in_schema=False)
async def invite(
    request: Request,
    visitor: Checked,
    views: Views,
    email: Annotated[str, Form(min_length=3, max_length=254)],
    role: Annotated[str, Form()] = "member",
) -> Response:
    body = {"email": email.strip(), "role": role if role in ROLES else "member"}
    call = visitor.api.post(f"/api/v1/workspaces/{visitor.session.workspace_id}/invitations", body)
    return await _or_page(request, views, visitor, call, "invited")


@router.post("/team/invitations/{invitation_id}/revoke", include_in_schema=False)
async def revoke(request: Request, invitation_id: uuid.UUID, visitor: Checked, views: Views) -> Response:
    call = visitor.api.delete(f"/api/v1/workspaces/{visitor.session.workspace_id}/invitations/{invitation_id}")
    return await _or_page(request, views, visitor, call, "revoked")


@router.post("/team/members/{user_id}/role", include_in_schema=False)
async def change_role(
    request: Request, user_id: uuid.UUID, visitor: Checked, views: Views, role: Annotated[str, Form()]
) -> Response:
    call = visitor.api.patch(f"/api/v1/workspaces/{visitor.session.workspace_id}/members/{user_id}", {"role": role})
    return await _or_page(request, views, visitor, call, "changed")


@router.post("/team/members/{user_id}/remove", include_in_schema=False)
async def remove(request: Request, user_id: uuid.UUID, visitor: Checked, views: Views) -> Response:
    try:
        await visitor.api.delete(f"/api/v1/workspaces/{visitor.session.workspace_id}/members/{user_id}")
    except ApiProblem as exc:
        return await _team_page(request, views, visitor, error=exc.detail, status=exc.status)
    leaving = str(user_id) == str(token_claims(visitor.session.access_token).get("sub", ""))
    # Leaving ends this session's access there: the next page refreshes it into the personal workspace.
    return _done("/", "left") if leaving else _done("/team", "removed")


@router.post("/team/transfer", include_in_schema=False)
async def transfer(request: Request, visitor: Checked, views: Views, user_id: Annotated[uuid.UUID, Form()]) -> Response:
    call = visitor.api.post(f"/api/v1/workspaces/{visitor.session.workspace_id}/transfer", {"user_id": str(user_id)})
    return await _or_page(request, views, visitor, call, "transferred")


@router.post("/team/delete", include_in_schema=False)
async def delete_workspace(
    request: Request,
    visitor: Checked,
    views: Views,
    sessions: Sessions,
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if confirm.strip() != visitor.session.workspace_name:
        return await _team_page(request, views, visitor, error="Type the workspace's name to delete it.", status=422)
    try:
        await visitor.api.delete(f"/api/v1/workspaces/{visitor.session.workspace_id}")
    except ApiProblem as exc:
        return await _team_page(request, views, visitor, error=exc.detail, status=exc.status)
    personal = next((w["id"] for w in visitor.session.workspaces if w["personal"]), None)
    if personal is not None:
        await sessions.switch(visitor.session_id, visitor.api, personal)
    return _done("/workspaces", "deleted")


async def _workspaces_page(
    request: Request, views: Pages, visitor: Visitor, *, error: str | None = None, status: int = 200
) -> Response:
    listed = await visitor.api.get("/api/v1/workspaces", per_page=250)
    context = {
        "workspaces": listed["items"],
        "error": error,
        "notice": NOTICES.get(request.query_params.get("done", "")),
    }
    return views.render(request, "workspaces.html", context, visitor=visitor, status=status)


@router.get("/workspaces", include_in_schema=False)
async def workspaces(request: Request, visitor: SignedIn, views: Views) -> Response:
    return await _workspaces_page(request, views, visitor)


@router.post("/workspaces", include_in_schema=False)
async def create_workspace(
    request: Request,
    visitor: Checked,
    views: Views,
    sessions: Sessions,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    try:
        created = await visitor.api.post("/api/v1/workspaces", {"name": name})
    except ApiProblem as exc:
        return await _workspaces_page(request, views, visitor, error=exc.detail, status=exc.status)
    await sessions.switch(visitor.session_id, visitor.api, str(created["id"]))
    return _done("/team", "created")


@router.post("/workspaces/switch", include_in_schema=False)
async def switch(visitor: Checked, sessions: Sessions, workspace_id: Annotated[uuid.UUID, Form()]) -> Response:
    await sessions.switch(visitor.session_id, visitor.api, str(workspace_id))
    return RedirectResponse("/", status_code=303)


@router.get("/invite", include_in_schema=False)
async def invitation(request: Request, views: Views, visitor: MaybeSignedIn, token: str = "") -> Response:
    """The link of an invitation email: accept it signed in, or sign in (or register) first."""
    context = {"token": token[:256], "error": None}
    return views.render(request, "invite.html", context, visitor=visitor)


@router.post("/invite", include_in_schema=False)
async def accept(
    request: Request,
    visitor: Checked,
    views: Views,
    sessions: Sessions,
    token: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        joined = await visitor.api.post("/api/v1/invitations/accept", {"token": token})
    except (ApiProblem, PageNotFound) as exc:
        error = exc.detail if isinstance(exc, ApiProblem) else "This invitation was used, revoked, or has expired."
        status = exc.status
        return views.render(request, "invite.html", {"token": token, "error": error}, visitor=visitor, status=status)
    await sessions.switch(visitor.session_id, visitor.api, str(joined["id"]))
    return _done("/", "joined")
