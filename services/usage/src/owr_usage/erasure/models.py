"""The `usage.erased_workspaces` table: one tombstone per workspace whose figures were erased."""

from __future__ import annotations

from owr_shared.db import WorkspaceTombstoneColumns
from owr_usage.base import UsageBase


class ErasedWorkspace(WorkspaceTombstoneColumns, UsageBase):
    """An erased workspace: no figure is ever stored for it again, however late a sync reports."""

    __tablename__ = "erased_workspaces"
