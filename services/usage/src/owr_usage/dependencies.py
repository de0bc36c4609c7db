"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from owr_shared.auth import User, UserCaller, require_scope
from owr_shared.dependencies import from_state
from owr_usage.settings import UsageSettings

__all__ = ["Settings", "User", "UserCaller", "require_scope"]

Settings = Annotated[UsageSettings, Depends(from_state("settings"))]
