"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from owr_shared.auth import UserCaller, require_scope, user_with_scope
from owr_shared.dependencies import from_state
from owr_usage.settings import UsageSettings

__all__ = ["Settings", "User", "UserCaller", "require_scope"]

# Every public usage route reads: a signed-in user may, an API-token caller needs `usage:read`.
User = Annotated[UserCaller, Depends(user_with_scope("usage:read"))]
Settings = Annotated[UsageSettings, Depends(from_state("settings"))]
