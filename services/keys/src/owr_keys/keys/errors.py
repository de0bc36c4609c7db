"""Key errors; none of them ever carries the key or an echo of it."""

from __future__ import annotations

from owr_shared.errors import Conflict, NotFound, ServiceUnavailable


class KeyNotFound(NotFound):
    """No such key in the caller's workspace (also when it exists in another one)."""

    slug, title = "key-not-found", "Key Not Found"

    def __init__(self) -> None:
        super().__init__("No key with this id exists in this workspace.")


class DuplicateKey(Conflict):
    slug, title = "duplicate-key", "Key Already Stored"

    def __init__(self) -> None:
        super().__init__("This key is already stored in this workspace.")


class KeyInactive(Conflict):
    slug, title = "key-inactive", "Key Inactive"

    def __init__(self) -> None:
        super().__init__("The key is deactivated; activate it first.")


class QueueUnavailable(ServiceUnavailable):
    slug, title = "queue-unavailable", "Queue Unavailable"

    def __init__(self) -> None:
        super().__init__("The job queue is unreachable; try again shortly.", headers={"Retry-After": "5"})
