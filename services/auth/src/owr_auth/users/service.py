"""Registration, profile, password change and account deletion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_auth.api_tokens import service as api_token_service
from owr_auth.base import utcnow
from owr_auth.mail.queue import MailQueue
from owr_auth.members import service as member_service
from owr_auth.notices import service as notices
from owr_auth.passwords.service import PasswordService, check_password_policy
from owr_auth.sessions.repository import RefreshTokenRepository
from owr_auth.sessions.service import revoke_user_sessions
from owr_auth.sessions.throttle import LoginThrottle, account_subject
from owr_auth.settings import AuthSettings
from owr_auth.users.errors import AccountGone, EmailTaken, InvalidEmail, WrongCurrentPassword
from owr_auth.users.models import User
from owr_auth.users.normalize import canonical_email
from owr_auth.users.repository import UserRepository
from owr_auth.verification import service as verification_service
from owr_auth.workspaces import service as workspace_service
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_auth.workspaces.models import Membership, Workspace
from owr_auth.workspaces.repository import PERSONAL_WORKSPACE_NAME, WorkspaceRepository
from owr_shared.auth import Role, role_rank
from owr_shared.db import transaction
from owr_shared.jwt import Principal
from owr_shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class UserInWorkspace:
    """A verified caller: the user, the workspace their token acts in, their membership there, and the
    role their token carries (never above the membership's: a token minted before a lowering is refused)."""

    user: User
    workspace: Workspace
    membership: Membership
    role: Role


async def register(
    session: AsyncSession, passwords: PasswordService, queue: MailQueue, *, email: str, password: str
) -> UserInWorkspace:
    """Create a user and their personal workspace, with the user as its owner; a verification email goes
    to the address once this commits."""
    check_password_policy(password, field="password")
    canonical = canonical_email(email)
    if canonical is None:
        raise InvalidEmail()
    password_hash = await passwords.hash(password)
    user = await UserRepository(session).create(email=canonical, password_hash=password_hash)
    if user is None:
        raise EmailTaken()
    workspace, membership = await WorkspaceRepository(session).create_with_owner(
        user.id, PERSONAL_WORKSPACE_NAME, personal=True
    )
    await verification_service.send_verification(session, queue, user)
    log.info("user_registered", user_id=str(user.id), workspace_id=str(workspace.id))
    return UserInWorkspace(user, workspace, membership, Role.owner)


async def authenticated_user(session: AsyncSession, principal: Principal) -> UserInWorkspace:
    """The user behind a verified access token, in the token's workspace.

    Refuses (401) a token whose user is gone, whose membership is gone, whose role is above the
    membership's now (it was lowered since), whose session (`sid`) has ended, or that was issued before
    the user's last password change, so auth itself does not depend on Redis for any revocation. Every
    user route of auth goes through this (`owr_auth.dependencies`).
    """
    try:
        user_id = uuid.UUID(principal.subject)
        workspace_id = uuid.UUID(principal.workspace_id or "")
    except ValueError:
        raise AccountGone() from None
    found = await UserRepository(session).in_workspace(user_id, workspace_id)
    # `iat` carries milliseconds: a token minted in the second of a password change, before it, is refused.
    issued_at = principal.claims.get("iat", principal.issued_at)
    if (
        found is None
        or not isinstance(issued_at, int | float)
        or issued_at < found[0].password_changed_at.timestamp()
        or role_rank(principal.role) < 0
        or role_rank(principal.role) > role_rank(found[2].role)
        or not await _session_is_live(session, principal)
    ):
        raise AccountGone()
    return UserInWorkspace(*found, role=Role(principal.role or ""))


async def _session_is_live(session: AsyncSession, principal: Principal) -> bool:
    """A token of a session (`sid`) that was logged out or revoked is refused here without Redis too."""
    sid = principal.claims.get("sid")
    if sid is None:
        return True
    try:
        family_id = uuid.UUID(str(sid))
    except ValueError:
        return False
    return await RefreshTokenRepository(session).is_live(family_id)


async def confirm_password(
    session: AsyncSession, passwords: PasswordService, throttle: LoginThrottle, *, user: User, password: str, ip: str
) -> User:
    """The signed-in person types their password again before a change that needs more than a token (a new
    password, turning two-factor sign-in on): the user, locked; `WrongCurrentPassword` (403) otherwise.

    Throttled as logins are: a stolen access token must not become an unthrottled oracle for the password.
    The row is locked first: a login verifying the old password meanwhile re-checks the hash under this lock.
    """
    account = account_subject(user.email)
    await throttle.begin(account, ip)
    locked = await UserRepository(session).lock(user.id)
    if locked is None:
        raise AccountGone()
    if not await passwords.verify(locked.password_hash, password):
        raise WrongCurrentPassword()
    await throttle.succeeded(account, ip)
    return locked


async def change_password(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    passwords: PasswordService,
    throttle: LoginThrottle,
    queue: MailQueue,
    *,
    user: User,
    current_password: str,
    new_password: str,
    ip: str,
) -> None:
    """Replace the password after checking the current one, then end every session of the user; the account's
    address gets a notice once this commits."""
    check_password_policy(new_password, field="new_password")
    user = await confirm_password(session, passwords, throttle, user=user, password=current_password, ip=ip)
    user.password_hash = await passwords.hash(new_password)
    user.password_changed_at = utcnow()
    await session.flush()
    await notices.notify(session, queue, user, "password_changed")
    await end_every_session(session, redis, settings, user_id=user.id, reason="password_change")
    log.info("password_changed", user_id=str(user.id))


async def end_every_session(
    session: AsyncSession, redis: Redis, settings: AuthSettings, *, user_id: uuid.UUID, reason: str
) -> None:
    """A password change or "sign out everywhere": every refresh token, access token and API token dies."""
    await revoke_user_sessions(session, redis, settings, user_id=user_id, reason=reason)
    revoked = await api_token_service.revoke_all_for_user(session, redis, user_id=user_id)
    log.info("api_tokens_revoked", user_id=str(user_id), tokens=revoked, reason=reason)


async def delete_account(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: AuthSettings,
    cleanup: WorkspaceCleanup,
    *,
    principal: Principal,
) -> bool:
    """Delete the account: mark it and its solely-owned workspaces and end every session (one committed
    transaction), then erase those workspaces in every service and drop auth's rows.

    The revocation commits before any peer erases, so no token of the account can write while they do;
    the peers tombstone the workspaces, so nothing a late sync reports is stored. False when a peer is
    away: the account is already unusable, and the sweep finishes the erasure.
    """
    async with transaction(sessions) as session:
        current = await authenticated_user(session, principal)
        users = UserRepository(session)
        if await users.lock(current.user.id) is None:
            raise AccountGone()
        workspaces = WorkspaceRepository(session)
        workspace_ids = await workspaces.solely_owned_ids(current.user.id)
        now = utcnow()
        await users.mark_deleted(current.user.id, now)
        await workspaces.mark_deleted(workspace_ids, now)
        # Their other members lose them at once too (their own tokens die with the account).
        await member_service.close(session, redis, settings, workspace_ids, keep=current.user.id)
        await end_every_session(session, redis, settings, user_id=current.user.id, reason="account_deleted")
    finished = await workspace_service.finish_deletions(sessions, cleanup, workspace_ids)
    log.info("account_deleted", user_id=str(current.user.id), workspaces=len(workspace_ids), finished=finished)
    return finished
