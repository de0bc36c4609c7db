"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends

from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import Fingerprinter, Vault
from owr_shared.auth import Role, User, UserCaller, require_role, require_scope
from owr_shared.dependencies import from_state

__all__ = [
    "KeyFingerprinter",
    "KeysAdder",
    "KeysReader",
    "KeysSyncer",
    "KeysWriter",
    "Queue",
    "SecretVault",
    "Settings",
    "User",
    "UserCaller",
    "require_scope",
]

# Each route's least role in the workspace (the JWT's), and the scope an API-token caller needs besides:
# every member reads; a member adds and syncs keys; changing or deleting one is an admin's.
KeysReader = Annotated[UserCaller, Depends(require_role(Role.viewer, "keys:read"))]
KeysAdder = Annotated[UserCaller, Depends(require_role(Role.member, "keys:write"))]
KeysWriter = Annotated[UserCaller, Depends(require_role(Role.admin, "keys:write"))]
KeysSyncer = Annotated[UserCaller, Depends(require_role(Role.member, "keys:sync"))]

Settings = Annotated[KeysSettings, Depends(from_state("settings"))]
SecretVault = Annotated[Vault, Depends(from_state("vault"))]
KeyFingerprinter = Annotated[Fingerprinter, Depends(from_state("fingerprinter"))]
Queue = Annotated[ArqRedis, Depends(from_state("arq"))]
