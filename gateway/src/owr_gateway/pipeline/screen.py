"""Step 1, screen: `/internal` in any spelling is not found, and a path that reads two ways is refused."""

from __future__ import annotations

from owr_gateway.paths import PATH_INTERNAL, PATH_OK, screen_path
from owr_gateway.pipeline.problems import Refusal
from owr_shared.errors import BAD_REQUEST, NOT_FOUND

NO_ROUTE = "No route matches this path."


def screen(path: str, raw_path: bytes) -> None:
    """Raise the refusal for a hidden or ambiguous path; return for any other."""
    screened = screen_path(path, raw_path)
    if screened == PATH_OK:
        return
    if screened == PATH_INTERNAL:
        raise Refusal(NOT_FOUND, NO_ROUTE)
    raise Refusal(BAD_REQUEST, "The path contains dot segments or encoded separators.")
