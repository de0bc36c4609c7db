"""Erasure errors."""

from __future__ import annotations

from owr_shared.errors import ProblemError


class WorkspaceErased(ProblemError):
    """The caller's workspace was erased (its account or the workspace was deleted) while its token lived."""

    status, slug, title = 410, "workspace-erased", "Workspace Erased"
    default_detail = "This workspace has been deleted; nothing more can be stored in it."
