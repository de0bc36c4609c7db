"""Inviting an email to a workspace with a role, listing and revoking invitations, and accepting one.

An owner or admin invites (a role no higher than their own); inviting an address again replaces its
open invitation. The token is minted when the email is rendered (`invitations.mail`), stored as its
SHA-256, works once, for 7 days, and never appears in an API response. Accepting needs the signed-in
account of the invited address, with that address verified, and makes it a member with the role.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.audit import service as audit
from owr_auth.audit.schemas import AuditAction
from owr_auth.invitations import mail
from owr_auth.invitations.errors import (
    AlreadyMember,
    EmailNotVerified,
    InvitationForAnotherEmail,
    InvitationNotFound,
    TooManyInvitations,
)
from owr_auth.invitations.models import Invitation
from owr_auth.invitations.repository import InvitationRepository
from owr_auth.invitations.schemas import InvitationView
from owr_auth.mail.queue import MailQueue
from owr_auth.members.errors import MemberOutranksYou
from owr_auth.members.repository import MemberRepository
from owr_auth.settings import AuthSettings
from owr_auth.users.errors import InvalidEmail
from owr_auth.users.models import User
from owr_auth.users.normalize import canonical_email
from owr_auth.workspaces import service as workspace_service
from owr_auth.workspaces.errors import WorkspaceNotFound
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_auth.workspaces.schemas import WorkspaceItem
from owr_shared.auth import Role, role_rank
from owr_shared.logging import get_logger

if TYPE_CHECKING:
    from owr_auth.users.service import UserInWorkspace

log = get_logger(__name__)

INVITATION_TTL = timedelta(days=7)


def view(invitation: Invitation, now: datetime) -> InvitationView:
    return InvitationView(
        id=invitation.id,
        workspace_id=invitation.workspace_id,
        email=invitation.email,
        role=Role(invitation.role),
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        status="pending" if invitation.expires_at > now else "expired",
    )


async def invite(
    session: AsyncSession,
    settings: AuthSettings,
    queue: MailQueue,
    caller: UserInWorkspace,
    workspace_id: uuid.UUID,
    *,
    email: str,
    role: Role,
) -> InvitationView:
    acting = await workspace_service.access(session, caller, workspace_id, Role.admin)
    if role_rank(role) > role_rank(acting.role):
        raise MemberOutranksYou()
    address = canonical_email(email)
    if address is None:
        raise InvalidEmail()
    # The workspace's row lock serialises invitations, acceptances and its deletion.
    if await WorkspaceRepository(session).lock(workspace_id) is None:
        raise WorkspaceNotFound()
    invitations = InvitationRepository(session)
    if await invitations.member_with_email(workspace_id, address):
        raise AlreadyMember()
    now = datetime.now(UTC)
    await invitations.revoke_open_for(workspace_id, address, now)
    if await invitations.count_pending(workspace_id, now) >= settings.invitations_open_max:
        raise TooManyInvitations(settings.invitations_open_max)
    invitation = await invitations.add(
        Invitation(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            email=address,
            role=role.value,
            invited_by=caller.user.id,
            expires_at=now + INVITATION_TTL,
            created_at=now,
        )
    )
    await audit.record(
        session,
        workspace_id,
        AuditAction.member_invited,
        actor_id=caller.user.id,
        subject_email=address,
        role=role.value,
    )
    await mail.request(session, queue, invitation)
    return view(invitation, now)


async def page(
    session: AsyncSession, caller: UserInWorkspace, workspace_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[InvitationView], int]:
    await workspace_service.access(session, caller, workspace_id, Role.admin)
    rows, total = await InvitationRepository(session).page(workspace_id, offset=offset, limit=limit)
    now = datetime.now(UTC)
    return [view(row, now) for row in rows], total


async def revoke(
    session: AsyncSession, caller: UserInWorkspace, workspace_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    """Revoke an open invitation: its link stops working at once."""
    await workspace_service.access(session, caller, workspace_id, Role.admin)
    invitation = await InvitationRepository(session).lock_open(workspace_id, invitation_id)
    if invitation is None:
        raise InvitationNotFound()
    invitation.revoked_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session,
        workspace_id,
        AuditAction.invitation_revoked,
        actor_id=caller.user.id,
        subject_email=invitation.email,
        role=invitation.role,
    )


def require_verified_email(user: User) -> None:
    """Accepting an invitation needs a verified address (issue 16, item 5): 403 `email-not-verified`."""
    if user.email_verified_at is None:
        raise EmailNotVerified()


async def accept(session: AsyncSession, caller: UserInWorkspace, *, token: str) -> WorkspaceItem:
    """Join the invitation's workspace with its role, as the account of the invited address."""
    if not mail.well_formed(token):
        raise InvitationNotFound()
    invitations = InvitationRepository(session)
    invitation = await invitations.lock_by_hash(mail.hash_token(token))
    now = datetime.now(UTC)
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise InvitationNotFound()
    if invitation.email != caller.user.email:
        raise InvitationForAnotherEmail()
    require_verified_email(caller.user)
    workspace = await WorkspaceRepository(session).lock(invitation.workspace_id)
    if workspace is None:
        raise InvitationNotFound()
    membership = await MemberRepository(session).add(workspace.id, caller.user.id, Role(invitation.role))
    if membership is None:
        raise AlreadyMember()
    invitation.accepted_at = now
    invitation.accepted_by = caller.user.id
    await session.flush()
    await audit.record(
        session,
        workspace.id,
        AuditAction.member_joined,
        actor_id=caller.user.id,
        subject_user_id=caller.user.id,
        subject_email=invitation.email,
        role=invitation.role,
    )
    return workspace_service.item(workspace, membership.role)
