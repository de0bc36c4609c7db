"""Workspace errors."""

from __future__ import annotations

from owr_shared.errors import RETRY_SOON, ServiceUnavailable


class WorkspaceCleanupUnavailable(ServiceUnavailable):
    """Another service could not erase a workspace's data: the deletion stops and can be retried."""

    slug, title = "deletion-unavailable", "Deletion Unavailable"
    default_detail = "The account cannot be deleted right now; try again shortly."
    default_headers = RETRY_SOON
