"""Read errors; none echoes input."""

from __future__ import annotations

from owr_shared.errors import NotFound, ProblemError, field_errors


class KeyUsageNotFound(NotFound):
    """No figures for this key in the caller's workspace (also when it exists in another one)."""

    slug, title = "key-not-found", "Key Not Found"
    default_detail = "No usage is known for a key with this id in this workspace."


class InvalidRange(ProblemError):
    """A `from`/`to` pair that is reversed or reaches past retention."""

    status, slug, title = 422, "invalid-range", "Invalid Date Range"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail, errors=field_errors("query", field, detail, "invalid_range"))
