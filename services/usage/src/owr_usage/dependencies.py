"""Request dependencies: the callers (users and services) and the objects the lifespan owns."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from owr_shared.auth import CurrentPrincipal, bearer_token
from owr_shared.dependencies import from_state
from owr_shared.jwt import JwksVerifier, Principal
from owr_usage.errors import InsufficientScope, WorkspaceRequired
from owr_usage.settings import UsageSettings


@dataclass(frozen=True, slots=True)
class UserCaller:
    """A user acting in one workspace; every query of theirs is filtered by `workspace_id`."""

    user_id: str
    workspace_id: uuid.UUID


async def _user_caller(principal: CurrentPrincipal) -> UserCaller:
    try:
        workspace_id = uuid.UUID(principal.workspace_id or "")
    except ValueError:
        raise WorkspaceRequired() from None
    return UserCaller(user_id=principal.subject, workspace_id=workspace_id)


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting service tokens for this service that carry `scope`.

    A user's access token fails verification here (wrong audience and type): 401, as is a token for
    another service. A valid service token without the scope is a 403.
    """

    async def dependency(request: Request) -> Principal:
        verifier: JwksVerifier = request.app.state.service_verifier
        principal = await verifier.verify(bearer_token(request), expected_types=("service",))
        if scope not in principal.scopes:
            raise InsufficientScope(scope)
        return principal

    dependency.__name__ = f"service_token_with_{scope.replace(':', '_')}"
    return dependency


User = Annotated[UserCaller, Depends(_user_caller)]
Settings = Annotated[UsageSettings, Depends(from_state("settings"))]
