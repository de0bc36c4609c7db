"""Personal API tokens: create (shown once), list, revoke at once, and introspection for the gateway.

Introspection answers RFC 7662-style for a gateway authenticated with its client credentials, and an
active answer carries a short-lived access JWT with the token's scopes (`tid`, `scope`): the gateway
forwards that JWT, and every service verifies it as it verifies any JWT. Revocation deletes the
gateway's cached answer (named by the stored hash) once it has committed, and an introspection that
raced it finds the token revoked when it records the use, so a revoked token fails at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.api_tokens import token_format
from owr_auth.api_tokens.errors import RateLimitAboveUsers, TokenNotFound, TooManyTokens
from owr_auth.api_tokens.models import ApiToken
from owr_auth.api_tokens.repository import ApiTokenRepository
from owr_auth.api_tokens.schemas import CreatedToken, CreateTokenRequest, Introspection, TokenView
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.signing.service import mint_access_token
from owr_auth.users.errors import AccountGone
from owr_auth.users.repository import UserRepository
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.auth import Role, UserCaller, lower_role
from owr_shared.db import after_commit
from owr_shared.logging import get_logger

log = get_logger(__name__)

INACTIVE = Introspection(active=False)
# The gateway keeps an introspection at most this long (the bound), never past the JWT it holds.
MAX_CACHE_SECONDS = 60
# The JWT must outlive the cache entry that holds it, with room for clock skew and a slow request.
JWT_MARGIN_SECONDS = 30


def view(token: ApiToken) -> TokenView:
    return TokenView(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        scopes=token.scopes,
        workspace_id=token.workspace_id,
        role=Role(token.role),
        rate_limit_per_minute=token.rate_limit_per_minute,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
    )


async def create(
    session: AsyncSession, settings: AuthSettings, *, user: UserCaller, body: CreateTokenRequest
) -> CreatedToken:
    """Make a token for the caller's workspace, carrying the caller's role there (at most: a role lowered
    later lowers it, a raised one does not raise it); its value is in this answer and nowhere else.

    Its own limit may not exceed the user's, and a user holds at most `api_tokens_per_user_max` live tokens.
    """
    cap = settings.api_token_max_rate_limit_per_minute
    if body.rate_limit_per_minute is not None and body.rate_limit_per_minute > cap:
        raise RateLimitAboveUsers(cap)
    user_id = uuid.UUID(user.user_id)
    now = datetime.now(UTC)
    repo = ApiTokenRepository(session)
    # The user's row lock serialises concurrent creations, so the count below cannot be raced past.
    if await UserRepository(session).lock(user_id) is None:
        raise AccountGone()
    if await repo.count_live(user_id, now) >= settings.api_tokens_per_user_max:
        raise TooManyTokens(settings.api_tokens_per_user_max)
    value = token_format.new_token()
    token = await repo.insert(
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "workspace_id": user.workspace_id,
            "name": body.name,
            "prefix": token_format.display_prefix(value),
            "token_hash": token_format.token_hash(settings.api_token_pepper_bytes, value),
            "scopes": list(body.scopes),
            # The minter's role now (their token's, checked against the membership): the token's ceiling.
            "role": user.role or Role.viewer.value,
            "rate_limit_per_minute": body.rate_limit_per_minute,
            "expires_at": now + timedelta(days=body.expires_in_days or settings.api_token_default_days),
            "created_at": now,
        }
    )
    log.info("api_token_created", token_id=str(token.id), scopes=" ".join(token.scopes))
    return CreatedToken(**view(token).model_dump(), token=value)


async def page(session: AsyncSession, *, user: UserCaller, offset: int, limit: int) -> tuple[list[TokenView], int]:
    rows, total = await ApiTokenRepository(session).page(uuid.UUID(user.user_id), offset=offset, limit=limit)
    return [view(row) for row in rows], total


async def revoke(session: AsyncSession, redis: Redis, *, user: UserCaller, token_id: uuid.UUID) -> None:
    """Revoke, and drop the gateway's cached answer once committed so the very next request fails."""
    token = await ApiTokenRepository(session).get_for_user(uuid.UUID(user.user_id), token_id)
    if token is None:
        raise TokenNotFound()
    token.revoked_at = datetime.now(UTC)
    await session.flush()
    # Before the commit an introspection still reads the token as live and could re-cache it.
    after_commit(session, partial(forget, redis, [token.token_hash]))
    log.info("api_token_revoked", token_id=str(token.id))


async def revoke_all_for_user(session: AsyncSession, redis: Redis, *, user_id: uuid.UUID) -> int:
    """Revoke every token of a user (a password change, "sign out everywhere") and drop their cache entries."""
    hashes = await ApiTokenRepository(session).revoke_all_for_user(user_id, datetime.now(UTC))
    after_commit(session, partial(forget, redis, hashes))
    return len(hashes)


async def revoke_in_workspace(
    session: AsyncSession, redis: Redis, *, workspace_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> int:
    """Revoke the tokens acting in a workspace (one member's, who leaves it; or everyone's, as it is
    deleted) and drop their cache entries once committed. A token never outlives its membership, and
    does not come back should its person be invited again."""
    hashes = await ApiTokenRepository(session).revoke_in_workspace(workspace_id, datetime.now(UTC), user_id=user_id)
    after_commit(session, partial(forget, redis, hashes))
    return len(hashes)


async def forget(redis: Redis, hashes: list[bytes]) -> None:
    """Delete the gateway's cache entries. If Redis is down they still expire within a minute; the
    revocation itself is already in the database, which every new introspection reads."""
    if not hashes:
        return
    try:
        await redis.delete(*(token_format.cache_key(h) for h in hashes))
    except (RedisError, OSError):
        log.warning("api_token_cache_purge_failed", tokens=len(hashes))


async def introspect(
    session: AsyncSession, keyring: Keyring, settings: AuthSettings, *, token: str, now: datetime | None = None
) -> Introspection:
    """Who this token acts for, with a JWT carrying its scopes; `active: false` for anything else."""
    if not token_format.well_formed(token):
        return INACTIVE
    now = now or datetime.now(UTC)
    repo = ApiTokenRepository(session)
    found = await repo.by_hash(token_format.token_hash(settings.api_token_pepper_bytes, token))
    if found is None or found.revoked_at is not None or found.expires_at <= now:
        return INACTIVE
    # FOR SHARE: a change of the role commits first, so the JWT carries the role after it (members.cutoff).
    membership = await WorkspaceRepository(session).membership(found.user_id, found.workspace_id, for_share=True)
    user = await UserRepository(session).get(found.user_id)
    if membership is None or user is None:  # the user left the workspace the token was made for
        return INACTIVE
    remaining = int((found.expires_at - now).total_seconds())
    access = mint_access_token(
        keyring,
        settings,
        user_id=found.user_id,
        workspace_id=found.workspace_id,
        role=lower_role(found.role, membership[1].role),
        email_verified=user.email_verified_at is not None,
        now=now.timestamp(),
        api_token=(found.id, found.scopes),
        ttl=max(1, min(settings.api_token_access_ttl_seconds, remaining)),
    )
    # Introspections are cached by the gateway, so this write happens about once a minute per busy token.
    # It waits for a concurrent revocation's row lock and re-reads `revoked_at`: a revocation that
    # committed after the read above turns this answer inactive rather than into a fresh cache entry.
    if not await repo.touch(found.id, now):
        return INACTIVE
    return Introspection(
        active=True,
        token_id=found.id,
        user_id=found.user_id,
        workspace_id=found.workspace_id,
        scopes=found.scopes,
        # Tokens made before the cap existed (up to 100,000/min) are held to the user's limit too.
        rate_limit_per_minute=(
            None
            if found.rate_limit_per_minute is None
            else min(found.rate_limit_per_minute, settings.api_token_max_rate_limit_per_minute)
        ),
        expires_at=found.expires_at,
        access_token=access.token,
        access_token_expires_in=access.expires_in,
        cache_seconds=max(0, min(MAX_CACHE_SECONDS, access.expires_in - JWT_MARGIN_SECONDS)),
    )
