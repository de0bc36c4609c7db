"""Key action errors; none echoes input (a key's id in a detail is the parsed UUID of the path, no secret)."""

from __future__ import annotations

import uuid

from owr_shared.errors import Conflict, NotFound


class KeyNotKnown(NotFound):
    """No synced key with this id in the caller's workspace (also when it exists in another one)."""

    slug, title = "key-not-found", "Key Not Found"
    default_detail = "No synced key with this id exists in this workspace."


class ActionNotFound(NotFound):
    """No key action with this id (deleted with its workspace)."""

    slug, title = "key-action-not-found", "Key Action Not Found"
    default_detail = "No key action with this id exists."


class KeyNotLinked(Conflict):
    """A user's action (disable, enable, a limit) on a key no account's key list links to: nothing here could
    send it."""

    slug, title = "key-not-linked", "Key Not Linked"
    default_detail = (
        "The key is not linked to an OpenRouter account: store the account's management key here and let it sync, "
        "or change the key at openrouter.ai."
    )


class KeyAlreadyDisabled(Conflict):
    """A user's disable of a key OpenRouter has disabled already, with no enable on its way."""

    slug, title = "key-already-disabled", "Key Already Disabled"

    def __init__(self, key_id: uuid.UUID) -> None:
        super().__init__(
            "OpenRouter has this key disabled already. To enable it again: "
            f"POST /api/v1/keys/{key_id}/enable-upstream (the key's page here has the button)."
        )


class KeyDisableUnderWay(Conflict):
    """A user's disable of a key with a disable recorded and not finished (a user's, a budget's or an anomaly's)."""

    slug, title = "key-disable-under-way", "Key Disable Under Way"

    def __init__(self, key_id: uuid.UUID) -> None:
        super().__init__(
            f"A disable of this key is already under way: follow it at GET /api/v1/keys/{key_id}/upstream "
            "(or on the key's page here)."
        )
