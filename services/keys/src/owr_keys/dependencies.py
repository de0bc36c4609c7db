"""Request dependencies: the callers (users and services, from `owr_shared.auth`) and lifespan objects."""

from __future__ import annotations

from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends

from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import Fingerprinter, Vault
from owr_shared.auth import User, UserCaller, require_scope, user_with_scope
from owr_shared.dependencies import from_state

__all__ = [
    "KeyFingerprinter",
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

# A signed-in user may do everything here; an API-token caller what its scopes name.
KeysReader = Annotated[UserCaller, Depends(user_with_scope("keys:read"))]
KeysWriter = Annotated[UserCaller, Depends(user_with_scope("keys:write"))]
KeysSyncer = Annotated[UserCaller, Depends(user_with_scope("keys:sync"))]

Settings = Annotated[KeysSettings, Depends(from_state("settings"))]
SecretVault = Annotated[Vault, Depends(from_state("vault"))]
KeyFingerprinter = Annotated[Fingerprinter, Depends(from_state("fingerprinter"))]
Queue = Annotated[ArqRedis, Depends(from_state("arq"))]
