"""Key errors; none of them ever carries the key or an echo of it."""

from __future__ import annotations

from owr_shared.errors import RETRY_SOON, Conflict, NotFound, ServiceUnavailable


class KeyNotFound(NotFound):
    """No such key in the caller's workspace (also when it exists in another one)."""

    slug, title = "key-not-found", "Key Not Found"
    default_detail = "No key with this id exists in this workspace."


class DuplicateKey(Conflict):
    slug, title = "duplicate-key", "Key Already Stored"
    default_detail = "This key is already stored in this workspace."


class TooManyKeys(Conflict):
    """The workspace holds `KEYS_MAX_KEYS_PER_WORKSPACE` keys already."""

    slug, title = "too-many-keys", "Too Many Keys"

    def __init__(self, cap: int) -> None:
        super().__init__(f"This workspace already stores {cap} keys, the most it may hold; delete one first.")


class KeyInactive(Conflict):
    slug, title = "key-inactive", "Key Inactive"
    default_detail = "The key is deactivated; activate it first."


class QueueUnavailable(ServiceUnavailable):
    slug, title = "queue-unavailable", "Queue Unavailable"
    default_detail = "The job queue is unreachable; try again shortly."
    default_headers = RETRY_SOON
