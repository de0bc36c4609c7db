"""Stats errors."""

from __future__ import annotations

from owr_shared.errors import ProblemError


class BadDay(ProblemError):
    """A date filter that is not YYYY-MM-DD (an empty one is no bound)."""

    status, slug, title = 422, "bad-day", "Not a Date"
    default_detail = "A date must be written YYYY-MM-DD. Go back and correct it."
