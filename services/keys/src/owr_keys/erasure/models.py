"""The `keys.erased_workspaces` table: one tombstone per workspace whose keys were erased."""

from __future__ import annotations

from owr_keys.base import KeysBase
from owr_shared.db import WorkspaceTombstoneColumns


class ErasedWorkspace(WorkspaceTombstoneColumns, KeysBase):
    """An erased workspace: no key or audit event is ever stored for it again."""

    __tablename__ = "erased_workspaces"
