"""Workspace errors."""

from __future__ import annotations

from owr_shared.errors import RETRY_SOON, Conflict, NotFound, ServiceUnavailable


class WorkspaceNotFound(NotFound):
    """Not a workspace the caller is a member of (or one being deleted): the same answer either way."""

    slug, title = "workspace-not-found", "Workspace Not Found"
    default_detail = "No workspace with this id has you as a member."


class PersonalWorkspace(Conflict):
    slug, title = "personal-workspace", "Personal Workspace"
    default_detail = (
        "A personal workspace always belongs to its person: it is neither transferred nor deleted on its own;"
        " it goes with the account."
    )


class TooManyWorkspaces(Conflict):
    slug, title = "too-many-workspaces", "Too Many Workspaces"

    def __init__(self, cap: int) -> None:
        super().__init__(f"You already own {cap} workspaces, the most allowed; delete one first.")


class WorkspaceCleanupUnavailable(ServiceUnavailable):
    """Another service could not erase a workspace's data: the deletion stops and can be retried."""

    slug, title = "deletion-unavailable", "Deletion Unavailable"
    default_detail = "The deletion cannot be finished right now; try again shortly."
    default_headers = RETRY_SOON
