"""Report errors; none echoes input. Ranges and unknown keys share key_usage's problems."""

from __future__ import annotations

from owr_shared.errors import ProblemError, field_errors
from owr_usage.key_usage.errors import InvalidRange, KeyUsageNotFound

__all__ = ["InvalidCursor", "InvalidRange", "InvalidSort", "KeyUsageNotFound"]


class InvalidSort(ProblemError):
    """A `sort` naming no sortable field."""

    status, slug, title = 422, "invalid-sort", "Invalid Sort"

    def __init__(self, allowed: str) -> None:
        detail = f"`sort` must be one of {allowed}, optionally prefixed with `-` (descending)."
        super().__init__(detail, errors=field_errors("query", "sort", detail, "invalid_sort"))


class InvalidCursor(ProblemError):
    """A `cursor` that is not one this service wrote for this very query (workspace, range, filters, sort,
    `per_page`), or that disagrees with `page`."""

    status, slug, title = 422, "invalid-cursor", "Invalid Cursor"

    def __init__(self) -> None:
        detail = "`cursor` must be a `next_cursor` of this same query (range, filters, sort and per_page)."
        super().__init__(detail, errors=field_errors("query", "cursor", detail, "invalid_cursor"))
