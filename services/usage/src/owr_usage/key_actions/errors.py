"""Key action errors; none echoes input."""

from __future__ import annotations

from owr_shared.errors import NotFound


class KeyNotKnown(NotFound):
    """No synced key with this id in the caller's workspace (also when it exists in another one)."""

    slug, title = "key-not-found", "Key Not Found"
    default_detail = "No synced key with this id exists in this workspace."


class ActionNotFound(NotFound):
    """No key action with this id (deleted with its workspace)."""

    slug, title = "key-action-not-found", "Key Action Not Found"
    default_detail = "No key action with this id exists."
