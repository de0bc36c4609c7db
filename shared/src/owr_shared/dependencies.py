"""FastAPI dependencies every service uses: objects the lifespan put on `app.state`, and pagination."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from owr_shared.schemas import MAX_PAGE, MAX_PER_PAGE


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning `app.state.<name>`; use it as `Annotated[TheType, Depends(from_state("name"))]`.

    Async on purpose: FastAPI runs plain `def` dependencies in a thread pool, a hand-off per request.
    """

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"state_{name}"
    return dependency


@dataclass(frozen=True, slots=True)
class Pagination:
    """`page` (1-based) and `per_page` (at most 250) of a list request."""

    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


async def _pagination(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items per page")] = 50,
) -> Pagination:
    return Pagination(page=page, per_page=per_page)


Paging = Annotated[Pagination, Depends(_pagination)]
