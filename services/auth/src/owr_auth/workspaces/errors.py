"""Workspace errors."""

from __future__ import annotations

from owr_shared.errors import ServiceUnavailable


class WorkspaceCleanupUnavailable(ServiceUnavailable):
    """Another service could not erase a workspace's data: the deletion stops and can be retried."""

    slug, title = "deletion-unavailable", "Deletion Unavailable"

    def __init__(self) -> None:
        super().__init__("The account cannot be deleted right now; try again shortly.", headers={"Retry-After": "5"})
