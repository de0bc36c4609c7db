"""`/api/v1/workspaces/{id}/audit`: the workspace's membership changes, for its owner and admins."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from owr_auth.audit import service as audit_service
from owr_auth.audit.schemas import AuditEventView
from owr_auth.dependencies import SessionUser
from owr_auth.workspaces import service as workspace_service
from owr_shared.auth import Role
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/workspaces", tags=["audit"])


@router.get(
    "/{workspace_id}/audit",
    response_model=Page[AuditEventView],
    responses=problem_responses(401, 403, 404, 422),
    summary="Who invited, joined, changed a role, left or took over (admin)",
)
async def workspace_audit(workspace_id: uuid.UUID, caller: SessionUser, session: DbSession, paging: Paging) -> Response:
    """Newest first."""
    await workspace_service.access(session, caller, workspace_id, Role.admin)
    items, total = await audit_service.page(session, workspace_id, offset=paging.offset, limit=paging.per_page)
    return json_response(Page[AuditEventView](items=items, total=total, page=paging.page, per_page=paging.per_page))
