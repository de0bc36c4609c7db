"""Helpers shared by the auth domains' errors."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from owr_shared.errors import ProblemError, problem_response


def problem_from(exc: ProblemError, request: Request) -> Response:
    """Render `exc` as the same problem+json its handler would, for refusals that must still commit.

    Raising through `DbSession` rolls the transaction back; a refusal that changed state on purpose
    (a revoked token family) returns this response instead, so the change is committed.
    """
    return problem_response(
        exc.status,
        headers=exc.headers,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        instance=request.url.path,
        errors=exc.errors,
    )
