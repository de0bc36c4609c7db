"""Snapshot errors; none echoes input."""

from __future__ import annotations

from owr_shared.errors import Conflict


class WorkspaceMismatch(Conflict):
    """A key's figures stay in the workspace it was first seen in; another one means a caller's bug."""

    slug, title = "workspace-mismatch", "Workspace Mismatch"
    default_detail = "A snapshot names a different workspace than earlier snapshots of the same key."
