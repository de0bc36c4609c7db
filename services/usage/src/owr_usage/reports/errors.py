"""Report errors; none echoes input. Ranges and unknown keys share key_usage's problems."""

from __future__ import annotations

from owr_shared.errors import ProblemError, field_errors
from owr_usage.key_usage.errors import InvalidRange, KeyUsageNotFound

__all__ = ["InvalidRange", "InvalidSort", "KeyUsageNotFound"]


class InvalidSort(ProblemError):
    """A `sort` naming no sortable field."""

    status, slug, title = 422, "invalid-sort", "Invalid Sort"

    def __init__(self, allowed: str) -> None:
        detail = f"`sort` must be one of {allowed}, optionally prefixed with `-` (descending)."
        super().__init__(detail, errors=field_errors("query", "sort", detail, "invalid_sort"))
