"""A workspace's members: list them, change a role, remove one (or leave), and transfer the ownership.

Who may do what: every member reads the list; an admin (or the owner) changes roles and removes
members, but never touches anyone above their own role nor gives a role above it; the owner's role
changes only by a transfer, which only the owner makes (the target becomes owner, the owner an admin).
Anyone but the owner may leave. A removal or a lowered role cuts the member's tokens for the workspace
off at once (`members.cutoff`), and a removal revokes their API tokens for it; a raised role applies
from their next refresh or switch. Every change is audited in the same transaction.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.api_tokens import service as api_token_service
from owr_auth.audit import service as audit
from owr_auth.audit.schemas import AuditAction
from owr_auth.members.cutoff import cut_off
from owr_auth.members.errors import AlreadyOwner, MemberNotFound, MemberOutranksYou, OwnerRoleFixed
from owr_auth.members.repository import MemberRepository
from owr_auth.members.schemas import MemberView
from owr_auth.settings import AuthSettings
from owr_auth.users.models import User
from owr_auth.workspaces import service as workspace_service
from owr_auth.workspaces.errors import PersonalWorkspace, WorkspaceNotFound
from owr_auth.workspaces.models import Membership
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.auth import Role, role_rank
from owr_shared.logging import get_logger

if TYPE_CHECKING:
    from owr_auth.users.service import UserInWorkspace

log = get_logger(__name__)


def view(membership: Membership, user: User, role: str | None = None) -> MemberView:
    return MemberView(
        user_id=user.id, email=user.email, role=Role(role or membership.role), joined_at=membership.created_at
    )


async def page(
    session: AsyncSession, caller: UserInWorkspace, workspace_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[MemberView], int]:
    await workspace_service.access(session, caller, workspace_id, Role.viewer)
    rows, total = await MemberRepository(session).page(workspace_id, offset=offset, limit=limit)
    return [view(membership, user) for membership, user in rows], total


async def _locked_member(session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User]:
    found = await MemberRepository(session).lock(workspace_id, user_id)
    if found is None:
        raise MemberNotFound()
    return found


async def change_role(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    caller: UserInWorkspace,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role,
) -> MemberView:
    acting = await workspace_service.access(session, caller, workspace_id, Role.admin)
    membership, user = await _locked_member(session, workspace_id, user_id)
    if membership.role == Role.owner.value:
        if user_id == caller.user.id:
            raise OwnerRoleFixed()
        raise MemberOutranksYou()
    if role_rank(membership.role) > role_rank(acting.role) or role_rank(role) > role_rank(acting.role):
        raise MemberOutranksYou()
    before = membership.role
    if before == role.value:
        return view(membership, user)
    await MemberRepository(session).set_role(workspace_id, user_id, role)
    if role_rank(role) < role_rank(before):
        await cut_off(redis, settings, workspace_id, [user_id])
    await audit.record(
        session,
        workspace_id,
        AuditAction.member_role_changed,
        actor_id=caller.user.id,
        subject_user_id=user_id,
        old_role=before,
        new_role=role.value,
    )
    return view(membership, user, role.value)


async def remove(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    caller: UserInWorkspace,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
) -> None:
    """Remove a member (an admin's), or leave (anyone's own, but the owner's)."""
    leaving = user_id == caller.user.id
    acting = await workspace_service.access(session, caller, workspace_id, Role.viewer if leaving else Role.admin)
    membership, _user = await _locked_member(session, workspace_id, user_id)
    if membership.role == Role.owner.value:
        raise OwnerRoleFixed() if leaving else MemberOutranksYou()
    if role_rank(membership.role) > role_rank(acting.role):
        raise MemberOutranksYou()
    await MemberRepository(session).remove(workspace_id, user_id)
    tokens = await api_token_service.revoke_in_workspace(session, redis, workspace_id=workspace_id, user_id=user_id)
    await cut_off(redis, settings, workspace_id, [user_id])
    await audit.record(
        session,
        workspace_id,
        AuditAction.member_left if leaving else AuditAction.member_removed,
        actor_id=caller.user.id,
        subject_user_id=user_id,
        role=membership.role,
    )
    log.info("member_removed", workspace_id=str(workspace_id), user_id=str(user_id), api_tokens=tokens)


async def transfer(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    caller: UserInWorkspace,
    workspace_id: uuid.UUID,
    new_owner_id: uuid.UUID,
) -> MemberView:
    """Make another member the owner; the owner becomes an admin, with their owner tokens cut off."""
    await workspace_service.access(session, caller, workspace_id, Role.owner)
    workspace = await WorkspaceRepository(session).lock(workspace_id)
    if workspace is None:
        raise WorkspaceNotFound()
    if workspace.personal:
        raise PersonalWorkspace()
    if new_owner_id == caller.user.id:
        raise AlreadyOwner()
    target, target_user = await _locked_member(session, workspace_id, new_owner_id)
    target_role = target.role
    await _locked_member(session, workspace_id, caller.user.id)
    members = MemberRepository(session)
    # In this order: the workspace has one owner at every statement (`uq_memberships_one_owner`).
    await members.set_role(workspace_id, caller.user.id, Role.admin)
    await members.set_role(workspace_id, new_owner_id, Role.owner)
    await cut_off(redis, settings, workspace_id, [caller.user.id])
    await audit.record(
        session,
        workspace_id,
        AuditAction.ownership_transferred,
        actor_id=caller.user.id,
        subject_user_id=new_owner_id,
        old_role=target_role,
    )
    return view(target, target_user, Role.owner.value)


async def close(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    workspace_ids: list[uuid.UUID],
    *,
    keep: uuid.UUID | None = None,
) -> None:
    """For workspaces whose deletion begins: remove their members (but `keep`, the deleting account, whose
    every token dies with it), revoke every API token acting in them, and cut the members' tokens off."""
    for workspace_id in workspace_ids:
        user_ids = await MemberRepository(session).remove_all(workspace_id, keep=keep)
        await api_token_service.revoke_in_workspace(session, redis, workspace_id=workspace_id)
        await cut_off(redis, settings, workspace_id, user_ids)
