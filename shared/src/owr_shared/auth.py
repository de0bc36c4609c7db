"""FastAPI dependencies that turn a bearer JWT into a verified caller: a user in a workspace, or a service.

Every service verifies tokens itself against auth's JWKS (defence in depth): `app.state.jwt_verifier`
checks users' access tokens (audience `owr-api`), `app.state.service_verifier` service tokens for this
service's own audience, so one kind can never pass as the other. `jwks_verifiers` is the lifespan that
puts both there.

Roles (`owner` > `admin` > `member` > `viewer`) are enforced here too, from the JWT's `role`:
`require_role(minimum, scope)` is the one dependency every user route of every service takes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request

from owr_shared import wall
from owr_shared.errors import Forbidden, Unauthorized
from owr_shared.jwt import JwksFetcher, JwksVerifier, Principal, httpx_jwks_fetcher
from owr_shared.settings import JwksServiceSettings


@asynccontextmanager
async def jwks_verifiers(
    app: FastAPI, settings: JwksServiceSettings, jwks_fetcher: JwksFetcher | None = None
) -> AsyncIterator[None]:
    """Lifespan part: `app.state.jwt_verifier` and `app.state.service_verifier`, over one JWKS client.

    `jwks_fetcher` replaces the HTTP fetch of auth's JWKS (tests serve a test keyring's set).
    """
    async with httpx.AsyncClient(follow_redirects=False) as http:
        fetch = jwks_fetcher or httpx_jwks_fetcher(http, settings.jwks_url)
        app.state.jwt_verifier = JwksVerifier(fetch, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        # Same keys and issuer, another audience: a user's token can never pass as a service's.
        app.state.service_verifier = JwksVerifier(
            fetch, issuer=settings.jwt_issuer, audience=settings.internal_audience
        )
        yield


class WorkspaceRequired(Forbidden):
    """A verified token that does not act in a workspace cannot reach workspace data."""

    slug, title = "workspace-required", "Workspace Required"
    default_detail = "The token does not name a workspace."


class InsufficientScope(Forbidden):
    slug, title = "insufficient-scope", "Insufficient Scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"The token lacks the scope {scope!r}.",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """The caller of a user-facing endpoint: a verified access JWT."""
    verifier: JwksVerifier = request.app.state.jwt_verifier
    return await verifier.verify(bearer_token(request), expected_types=("access",))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class Role(StrEnum):
    """A member's role in a workspace, highest first; the JWT's `role` claim."""

    owner = "owner"
    admin = "admin"
    member = "member"
    viewer = "viewer"


_RANK = {Role.viewer: 0, Role.member: 1, Role.admin: 2, Role.owner: 3}


def role_rank(role: str | None) -> int:
    """0 (viewer) to 3 (owner); -1 for a missing or unknown role, which no route admits."""
    try:
        return _RANK[Role(role)] if role is not None else -1
    except ValueError:
        return -1


def lower_role(a: str, b: str) -> Role:
    """The lower of two roles (an API token's role: its minter's then, capped by the membership now)."""
    return Role(a) if role_rank(a) <= role_rank(b) else Role(b)


class RoleTooLow(Forbidden):
    """The caller is a member of the workspace, but their role there does not allow this."""

    slug, title = "role-too-low", "Role Too Low"

    def __init__(self, minimum: str) -> None:
        super().__init__(f"This needs the role {minimum!r} or higher in the workspace.")


def check_role(role: str | None, minimum: Role | str) -> None:
    """Raise `RoleTooLow` (403) unless `role` is at least `minimum`: the one comparison of roles."""
    if role_rank(role) < role_rank(minimum):
        raise RoleTooLow(str(minimum))


@dataclass(frozen=True, slots=True)
class UserCaller:
    """A user acting in one workspace; every query of theirs is filtered by `workspace_id`."""

    user_id: str
    workspace_id: uuid.UUID
    # The role the token carries in that workspace (checked by `require_role` before a route runs).
    role: str | None = None
    # Whether the token says the person's email address is verified (`check_email_verified`).
    email_verified: bool = False


async def user_caller(request: Request, principal: CurrentPrincipal) -> UserCaller:
    """The verified user and the workspace their token acts in (403 when it names none); the request's
    transaction sees that workspace's rows only (`owr_shared.wall`)."""
    try:
        workspace_id = uuid.UUID(principal.workspace_id or "")
    except ValueError:
        raise WorkspaceRequired() from None
    wall.declare(request, wall.Wall(workspace_id=workspace_id))
    return UserCaller(
        user_id=principal.subject,
        workspace_id=workspace_id,
        role=principal.role,
        email_verified=principal.email_verified,
    )


User = Annotated[UserCaller, Depends(user_caller)]

# The claim that marks the JWT an API-token caller acts with (auth mints it at introspection).
API_TOKEN_CLAIM = "tid"  # noqa: S105 - a claim name, not a secret


class SessionRequired(Forbidden):
    """What only a signed-in person may do (manage tokens, change a password), an API token may not."""

    slug, title = "session-required", "Session Required"
    default_detail = "This needs a signed-in session, not an API token."


class EmailNotVerified(Forbidden):
    """An unverified account may sign in and read, but not do what its address must be proven for."""

    slug, title = "email-not-verified", "Email Not Verified"
    default_detail = "Verify your email address first: use the link we emailed you, or ask for a new one."


def check_email_verified(user: UserCaller, detail: str | None = None) -> None:
    """Raise `EmailNotVerified` (403) unless the caller's token says their address is verified.

    The claim is auth's at minting (a session's access token, or an API token's at introspection): a
    verification applies from the next refresh, switch or introspection.
    """
    if not user.email_verified:
        raise EmailNotVerified(detail)


def require_role(
    minimum: Role | str, scope: str | None = None
) -> Callable[[Principal, UserCaller], Awaitable[UserCaller]]:
    """The user dependency of a route that needs at least the role `minimum` in the token's workspace,
    and, for an API-token caller, the scope `scope`.

    The role is the JWT's (`role_too_low`, 403, below it): auth mints it from the membership, the
    gateway refuses a token minted before the membership was lowered or removed, and an API token's is
    its minter's role when it was made, capped by the membership. A signed-in session (a JWT without
    `tid`) needs no scope; an API-token caller gets 403 `insufficient-scope` without it.
    """
    minimum = Role(minimum)

    async def dependency(principal: CurrentPrincipal, user: User) -> UserCaller:
        check_role(principal.role, minimum)
        if scope is not None and API_TOKEN_CLAIM in principal.claims and scope not in principal.scopes:
            raise InsufficientScope(scope)
        return user

    dependency.__name__ = f"{minimum.value}_with_{(scope or 'session').replace(':', '_')}"
    return dependency


def user_with_scope(scope: str) -> Callable[[Principal, UserCaller], Awaitable[UserCaller]]:
    """`require_role("viewer", scope)`: a read any member may make (an API token with `scope`)."""
    return require_role(Role.viewer, scope)


async def session_user(principal: CurrentPrincipal, user: User) -> UserCaller:
    """A user dependency that refuses API-token callers."""
    if API_TOKEN_CLAIM in principal.claims:
        raise SessionRequired()
    return user


SessionUser = Annotated[UserCaller, Depends(session_user)]


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting service tokens for this service that carry `scope`.

    A user's access token fails verification here (wrong audience and type): 401, as is a token for
    another service. A valid service token without the scope is a 403. A service acts for no workspace: the
    request's transaction spans them all (`owr_shared.wall`), which is how `/internal/...` routes declare it.
    """

    async def dependency(request: Request) -> Principal:
        verifier: JwksVerifier = request.app.state.service_verifier
        principal = await verifier.verify(bearer_token(request), expected_types=("service",))
        if scope not in principal.scopes:
            raise InsufficientScope(scope)
        wall.declare(request, wall.SPANS)
        return principal

    dependency.__name__ = f"service_token_with_{scope.replace(':', '_')}"
    return dependency
