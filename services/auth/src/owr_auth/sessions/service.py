"""Login, refresh-token rotation, logout, and revocation of a user's sessions.

Refresh tokens are `owrr_` + 256 random bits, stored as SHA-256. Each login starts a family; each
refresh marks the presented token rotated and adds its successor to the family. A rotated token
presented again means two parties hold the family, so the whole family is revoked. Two concurrent
refreshes of one token are serialised by a row lock on the family: the second sees the token
rotated and counts as reuse (there is deliberately no grace period). Each successor expires
`refresh_token_ttl_seconds` after its rotation, so an idle session ends after that long.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.base import utcnow
from owr_auth.mail.queue import MailQueue
from owr_auth.metrics import LOGINS, REFRESH_TOKEN_REUSES
from owr_auth.mfa import service as mfa_service
from owr_auth.mfa.challenge import PendingLogin
from owr_auth.mfa.errors import InvalidChallenge, InvalidSecondFactor
from owr_auth.mfa.repository import MfaRepository
from owr_auth.mfa.service import MfaKit
from owr_auth.notices import service as notices
from owr_auth.passwords.service import PasswordService
from owr_auth.sessions.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    NoWorkspace,
    RefreshTokenReused,
    RevocationUnavailable,
)
from owr_auth.sessions.models import RefreshTokenFamily
from owr_auth.sessions.repository import RefreshTokenRepository
from owr_auth.sessions.schemas import ClientInfo, MfaChallenge, TokenPair
from owr_auth.sessions.throttle import LoginThrottle, account_subject
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.signing.service import mint_access_token
from owr_auth.users.errors import AccountGone
from owr_auth.users.models import User
from owr_auth.users.normalize import canonical_email, normalize_email
from owr_auth.users.repository import UserRepository
from owr_auth.workspaces.errors import WorkspaceNotFound
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.logging import get_logger
from owr_shared.wire import redis_keys

log = get_logger(__name__)

REFRESH_TOKEN_PREFIX = "owrr_"  # noqa: S105 - a public prefix, not a secret
# prefix + token_urlsafe(32): 43 base64url characters.
_REFRESH_TOKEN_LENGTH = len(REFRESH_TOKEN_PREFIX) + 43
LEEWAY_SECONDS = 60


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _looks_like_refresh_token(token: str) -> bool:
    return token.startswith(REFRESH_TOKEN_PREFIX) and len(token) == _REFRESH_TOKEN_LENGTH


def revocation_key(user_id: uuid.UUID) -> str:
    """Redis key the gateway reads: access tokens issued before its value (unix seconds, to the
    microsecond; `iat` carries milliseconds) are refused."""
    return f"{redis_keys.REVOKED_USER}{user_id}"


def session_revocation_key(session_id: uuid.UUID | str) -> str:
    """Redis key the gateway reads in the same call: an access token whose `sid` is here is refused."""
    return f"{redis_keys.REVOKED_SESSION}{session_id}"


@dataclass(frozen=True, slots=True)
class LoginContext:
    """What a login needs besides the credentials."""

    settings: AuthSettings
    keyring: Keyring
    passwords: PasswordService
    throttle: LoginThrottle
    mfa: MfaKit
    mails: MailQueue


async def login(
    session: AsyncSession, ctx: LoginContext, *, email: str, password: str, client: ClientInfo
) -> TokenPair | MfaChallenge:
    """Check the credentials under throttling and start a new refresh-token family, or, when the account has
    two-factor sign-in on, answer a challenge for the second step (`complete_login`) and no tokens."""
    ip = client.ip
    # An address that is not valid can belong to no account; it still costs a full verification.
    canonical = canonical_email(email) or normalize_email(email)
    account = account_subject(canonical)
    # Checked and counted in one step before argon2: concurrent guesses cannot all pass the check.
    await ctx.throttle.begin(account, ip)

    user = await UserRepository(session).get_by_email(canonical)
    if user is None:
        await ctx.passwords.verify_dummy(password)
        verified = False
    else:
        verified = await ctx.passwords.verify(user.password_hash, password)
    if user is None or not verified:
        LOGINS.labels("invalid_credentials").inc()
        raise InvalidCredentials()
    # The hash was verified without a lock; a password change may have committed since. Re-read it
    # under the row lock that change_password also takes, and refuse if it is no longer the same.
    verified_hash = user.password_hash
    user = await UserRepository(session).lock(user.id)
    if user is None or user.password_hash != verified_hash:
        LOGINS.labels("invalid_credentials").inc()
        raise InvalidCredentials()

    await ctx.throttle.succeeded(account, ip)
    if ctx.passwords.needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made; upgrade it while we hold the password.
        user.password_hash = await ctx.passwords.hash(password)
    if await MfaRepository(session).is_enabled(user.id):
        pending = PendingLogin(user.id, user.password_changed_at.timestamp())
        challenge = await ctx.mfa.challenges.issue(pending, client, now=ctx.mfa.clock())
        log.info("login_mfa_required", user_id=str(user.id))
        LOGINS.labels("mfa_required").inc()
        return MfaChallenge(challenge=challenge, expires_in=ctx.mfa.challenges.ttl_seconds)
    log.info("login", user_id=str(user.id))
    LOGINS.labels("ok").inc()
    return await start_session(session, ctx, user=user, client=client)


async def complete_login(
    session: AsyncSession,
    ctx: LoginContext,
    *,
    challenge: str,
    code: str | None,
    recovery_code: str | None,
    client: ClientInfo,
) -> TokenPair:
    """The second step: a live challenge of this client, and a good code, start the session.

    A wrong code leaves the challenge for another try (each try counts against the code throttle); the
    challenge is used up only by the success, at most once.
    """
    pending = await ctx.mfa.challenges.find(challenge, client, now=ctx.mfa.clock())
    if pending is None:
        raise InvalidChallenge()
    # Under the row lock a password change takes: a challenge made before a change is refused.
    user = await UserRepository(session).lock(pending.user_id)
    if user is None or user.password_changed_at.timestamp() != pending.password_changed_at:
        raise InvalidChallenge()
    ok = await mfa_service.check(
        session, ctx.mfa, user_id=user.id, code=code, recovery_code=recovery_code, ip=client.ip, purpose="login"
    )
    if not ok:
        raise InvalidSecondFactor()
    if not await ctx.mfa.challenges.claim(challenge):
        raise InvalidChallenge()
    log.info("login", user_id=str(user.id), second_factor="recovery_code" if recovery_code else "totp")
    LOGINS.labels("ok").inc()
    return await start_session(session, ctx, user=user, client=client)


async def start_session(session: AsyncSession, ctx: LoginContext, *, user: User, client: ClientInfo) -> TokenPair:
    """A new session (refresh-token family) for a signed-in user, recording the client, and its first pair.

    A client whose user agent none of the account's sessions had (as they last signed in or refreshed) gets
    the account a `new_sign_in` notice; the account's first session does not (it is the registration's).
    """
    repo = RefreshTokenRepository(session)
    signed_in_before, seen = await repo.sign_in_history(user.id, client.user_agent)
    family = await repo.create_family(user.id, user_agent=client.user_agent, ip=client.ip)
    if signed_in_before and not seen:
        await notices.notify(session, ctx.mails, user, "new_sign_in", about=family)
    return await _issue_pair(session, ctx.settings, ctx.keyring, family=family)


async def refresh(
    session: AsyncSession,
    redis: Redis,
    settings: AuthSettings,
    keyring: Keyring,
    *,
    refresh_token: str,
    client: ClientInfo | None = None,
) -> TokenPair:
    """Rotate a refresh token; raise `RefreshTokenReused` (after revoking the family) on reuse."""
    if not _looks_like_refresh_token(refresh_token):
        raise InvalidRefreshToken()
    token_hash = hash_refresh_token(refresh_token)
    repo = RefreshTokenRepository(session)
    family_id = await repo.family_id_for(token_hash)
    if family_id is None:
        raise InvalidRefreshToken()
    # Lock order: family, then token; logout and revocation lock only the family.
    family = await repo.lock_family(family_id)
    if family is None or family.revoked_at is not None:
        raise InvalidRefreshToken()
    token = await repo.get_token(token_hash)
    if token is None:
        raise InvalidRefreshToken()
    now = utcnow()
    if token.rotated_at is not None:
        await repo.revoke_family(family.id, reason="reuse", at=now)
        log.warning("refresh_token_reuse", user_id=str(family.user_id), family_id=str(family.id))
        REFRESH_TOKEN_REUSES.inc()
        # The family's revocation must still be committed (the answer stays a 401); without Redis, auth
        # refuses the family's access tokens from the database, the gateway once their minutes run out.
        with contextlib.suppress(RevocationUnavailable):
            await deny_sessions(redis, settings, [family.id])
        raise RefreshTokenReused()
    if token.expires_at <= now:
        raise InvalidRefreshToken()
    await repo.mark_rotated(token, now)
    if client is not None:
        await repo.record_use(family, at=now, user_agent=client.user_agent, ip=client.ip)
    return await _issue_pair(session, settings, keyring, family=family)


async def logout(session: AsyncSession, redis: Redis, settings: AuthSettings, *, refresh_token: str) -> None:
    """Revoke the token's family and its access tokens; unknown or malformed tokens are ignored (no oracle).

    The session's access tokens are denied at once (`sid`); when Redis cannot record that, the logout
    is refused (503, rolled back) rather than leaving them valid for their remaining minutes.
    """
    if not _looks_like_refresh_token(refresh_token):
        return
    repo = RefreshTokenRepository(session)
    family_id = await repo.family_id_for(hash_refresh_token(refresh_token))
    if family_id is not None and await repo.revoke_family(family_id, reason="logout", at=utcnow()):
        await deny_sessions(redis, settings, [family_id])
        log.info("logout", family_id=str(family_id))


async def deny_sessions(
    redis: Redis, settings: AuthSettings, session_ids: list[uuid.UUID], *, user_id: uuid.UUID | None = None
) -> None:
    """Deny sessions' access tokens (`sid`), and with `user_id` every token of the user issued before now.

    The marks live as long as an access token can; `RevocationUnavailable` (503) when Redis fails, so the
    caller's change is rolled back rather than leaving live tokens behind.
    """
    ttl = settings.access_token_ttl_seconds + LEEWAY_SECONDS
    try:
        async with redis.pipeline(transaction=False) as pipe:
            if user_id is not None:
                # Microseconds: a token minted in the same second as the cut-off but before it is refused.
                pipe.set(revocation_key(user_id), f"{time.time():.6f}", ex=ttl)
            for session_id in session_ids:
                pipe.set(session_revocation_key(session_id), 1, ex=ttl)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.error("revocation_unavailable", error_type=type(exc).__name__)
        raise RevocationUnavailable() from exc


async def revoke_user_sessions(
    session: AsyncSession, redis: Redis, settings: AuthSettings, *, user_id: uuid.UUID, reason: str
) -> None:
    """End every session of a user: revoke all refresh families and publish the access-token cut-off."""
    revoked = await RefreshTokenRepository(session).revoke_all_for_user(user_id, reason=reason, at=utcnow())
    await deny_sessions(redis, settings, revoked, user_id=user_id)
    log.info("sessions_revoked", user_id=str(user_id), families=len(revoked), reason=reason)


async def _issue_pair(
    session: AsyncSession, settings: AuthSettings, keyring: Keyring, *, family: RefreshTokenFamily
) -> TokenPair:
    """A new refresh token of the family and an access token for the family's workspace, with the role the
    membership has now. A family whose workspace the user left (or that was deleted) moves to the user's
    first workspace, so a removed member stays signed in, in their own workspace. The token says whether the
    address is verified now: a verification applies from the session's next pair."""
    found = await WorkspaceRepository(session).acting_membership(family.user_id, family.workspace_id)
    user = await UserRepository(session).get(family.user_id)
    if found is None or user is None:
        raise NoWorkspace()
    workspace, membership = found
    family.workspace_id = workspace.id
    raw = new_refresh_token()
    expires_at: datetime = utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds)
    await RefreshTokenRepository(session).add_token(family.id, hash_refresh_token(raw), expires_at)
    access = mint_access_token(
        keyring,
        settings,
        user_id=family.user_id,
        workspace_id=workspace.id,
        role=membership.role,
        email_verified=user.email_verified_at is not None,
        session_id=family.id,
    )
    return TokenPair(access_token=access.token, refresh_token=raw, expires_in=access.expires_in)


async def switch(
    session: AsyncSession,
    settings: AuthSettings,
    keyring: Keyring,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    workspace_id: uuid.UUID,
) -> TokenPair:
    """Move the caller's session to another of their workspaces: a new token pair acting there.

    The session (refresh-token family) stays one: its current refresh token is retired as a refresh
    would (presenting it again counts as reuse), and the session's later refreshes stay in the chosen
    workspace. Not a member (or a workspace being deleted): `WorkspaceNotFound` (404).
    """
    repo = RefreshTokenRepository(session)
    family = await repo.lock_family(session_id)
    if family is None or family.revoked_at is not None or family.user_id != user_id:
        raise AccountGone()
    if await WorkspaceRepository(session).membership(user_id, workspace_id, for_share=True) is None:
        raise WorkspaceNotFound()
    await repo.retire_tokens(family.id, utcnow())
    family.workspace_id = workspace_id
    log.info("session_switched", user_id=str(user_id), workspace_id=str(workspace_id))
    return await _issue_pair(session, settings, keyring, family=family)
