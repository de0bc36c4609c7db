"""SQL for erased workspaces: tombstones, the shared erasure lock, and the workspaces holding rows."""

from __future__ import annotations

from owr_keys.audit.models import AuditEvent
from owr_keys.erasure.models import ErasedWorkspace
from owr_keys.keys.models import OpenRouterKey
from owr_shared.repository import TombstoneRepository


class ErasureRepository(TombstoneRepository):
    tombstones = ErasedWorkspace
    holders = (OpenRouterKey.__table__.c.workspace_id, AuditEvent.__table__.c.workspace_id)
